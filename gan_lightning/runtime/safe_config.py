"""Instantiate configs read from files (checkpoints someone gave you) through an allowlist.

A checkpoint is data, never code. Its tensors load with ``torch.load(weights_only=True)``,
but the run config inside it is what rebuilds the model, and a config can name any importable
callable as ``_target_`` with any arguments (``os.system`` with a command, ``subprocess.Popen``,
``builtins.exec`` ...): instantiating it would run that code on the machine of whoever scores
the checkpoint. Hydra's own blocklist stops only the most obvious callables. So every config
that comes from a file goes through :func:`instantiate_trusted`:

* every ``_target_`` in the tree is checked *before anything is imported*: the project's own
  models, nets, priors, DataModules and metrics callback by exact name, or a class of
  ``torch.nn`` / ``torch.optim`` (looked up in the already-imported torch, never imported by
  name), which must be an ``nn.Module``, an ``Optimizer`` or a learning-rate scheduler;
* interpolations (``${...}``) are refused: checkpoints store resolved configs, and a resolver
  could read the environment;
* only Hydra's own special keys (``_target_``, ``_partial_``, ``_args_``, ``_recursive_``,
  ``_convert_``) are accepted.

Anything else is a :class:`ConfigError` naming the key and the target.

**Your own classes** (a generator of your package) are refused by default: only the person
*loading* a checkpoint can widen the list, with the ``trust`` key of gan-generate, gan-evaluate
and train.py (``trust=[my_project]``, on the command line or in their own config; never read
from the checkpoint). A trusted prefix matches whole module names (``my_project`` covers
``my_project.nets.G``, never ``my_project_evil.G``), and lets through only *classes defined
under it* (``cls.__module__`` under the prefix, looked up in the module's own namespace, no
attribute walk) that are ``torch.nn.Module`` (LightningModules included), LightningDataModule,
Lightning Callback, optimizer or learning-rate-scheduler classes: never a function
(``my_project.run``), a module's re-export (``my_project.os.system``, ``my_project.nn.Module``),
a dunder or private name (``my_project.__builtins__``, ``my_project.__main__``), or a module
outside the package, planted anywhere on ``sys.path``. What trusting still means: importing
that package's modules, and calling those classes with whatever arguments the file holds.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from gan_lightning.errors import ConfigError

#: The project's classes a saved config may name, by their dotted path.
PROJECT_TARGETS = frozenset(
    {
        "gan_lightning.modules.gan.GAN",
        "gan_lightning.modules.vae.VAE",
        "gan_lightning.modules.self_conditioning.SelfConditioning",
        "gan_lightning.nets.mlp.MLPGenerator",
        "gan_lightning.nets.mlp.MLPDiscriminator",
        "gan_lightning.nets.dcgan.DCGANGenerator",
        "gan_lightning.nets.dcgan.DCGANDiscriminator",
        "gan_lightning.nets.vae.MLPEncoder",
        "gan_lightning.nets.vae.MLPDecoder",
        "gan_lightning.nets.vae.ConvEncoder",
        "gan_lightning.nets.vae.ConvDecoder",
        "gan_lightning.nets.priors.NormalPrior",
        "gan_lightning.nets.priors.UniformPrior",
        "gan_lightning.data.mnist.MNISTDataModule",
        "gan_lightning.data.celeba.CelebADataModule",
        "gan_lightning.data.image_folder.ImageFolderDataModule",
        "gan_lightning.data.gaussian.GaussianDataModule",
        "gan_lightning.metrics.GenerativeMetrics",
        "gan_lightning.metrics.callback.GenerativeMetrics",
    }
)
_TORCH_TARGET = re.compile(r"^torch\.(nn|optim)(\.[A-Za-z_][A-Za-z0-9_]*)+$")
HYDRA_KEYS = frozenset({"_target_", "_partial_", "_args_", "_recursive_", "_convert_"})
#: A trusted module prefix: dotted Python identifiers, none private or dunder.
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
#: How the trust setting is named in every message (the CLIs' key).
TRUST_KEY = "trust"


def check_trust(trust: Any) -> tuple[str, ...]:
    """The ``trust`` setting as a tuple of module prefixes; ``None``/``[]``: trust nothing."""
    if trust is None:
        return ()
    if isinstance(trust, str):
        trust = [trust]
    if not isinstance(trust, Iterable):
        raise ConfigError(
            f"{TRUST_KEY}={trust!r} must be a list of module prefixes, e.g. [my_project]."
        )
    prefixes = tuple(str(p) for p in trust)
    for prefix in prefixes:
        if not _PREFIX.match(prefix):
            raise ConfigError(
                f"{TRUST_KEY}: {prefix!r} is not a module prefix; name your own package (or "
                "one of its modules), e.g. trust=[my_project] or trust=[my_project.nets]."
            )
    return prefixes


def _trusted_bases() -> tuple[type, ...]:
    import pytorch_lightning as pl

    return (
        torch.nn.Module,
        pl.LightningDataModule,
        pl.Callback,
        torch.optim.Optimizer,
        torch.optim.lr_scheduler.LRScheduler,
    )


def _under(name: str, prefix: str) -> bool:
    """``name`` is ``prefix`` or inside it, at a dot boundary (``a.b`` is under ``a``, ``ab`` is not)."""
    return name == prefix or name.startswith(prefix + ".")


def trusted_class(target: str, trust: tuple[str, ...]) -> tuple[type | None, str]:
    """``(the class, "")`` when ``target`` names an allowed class under a trusted prefix, else
    ``(None, why)``. Nothing is imported unless ``target`` is under a trusted prefix."""
    prefix = next((p for p in trust if _under(target, p)), None)
    if prefix is None:
        return None, ""
    module_name, _, name = target.rpartition(".")
    if not module_name or not _PREFIX.match(target):
        return None, "it is not module.Class (private and dunder names are never trusted)"
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - ImportError, or the module's own failure
        return None, f"{module_name} cannot be imported as a module of {prefix} ({err})"
    obj = vars(module).get(name)  # the module's own namespace: no __getattr__, no attribute walk
    if obj is None:
        return None, f"{module_name} defines no {name}"
    if not isinstance(obj, type):
        return None, f"it is a {type(obj).__name__}, not a class; only classes are trusted"
    if (
        obj.__module__ != module_name
        or obj.__qualname__ != name
        or not _under(obj.__module__, prefix)
    ):
        return (
            None,
            f"it is {obj.__module__}.{obj.__qualname__}, not a class defined in {module_name}",
        )
    if not issubclass(obj, _trusted_bases()):
        return None, (
            "it is not a torch.nn.Module, LightningDataModule, Callback, optimizer or scheduler "
            "class, the only kinds a trusted package may contribute"
        )
    return obj, ""


def _torch_class(target: str) -> type | None:
    """The torch class a ``torch.nn.X`` / ``torch.optim.X`` path names, looked up attribute by
    attribute in the imported ``torch`` (no import by name); ``None`` if it is not one."""
    obj: Any = torch
    for part in target.split(".")[1:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    if not isinstance(obj, type):
        return None
    allowed = (torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)
    return obj if issubclass(obj, allowed) else None


def _check_target(target: Any, key: str, trust: tuple[str, ...]) -> None:
    if isinstance(target, str) and (
        target in PROJECT_TARGETS
        or (_TORCH_TARGET.match(target) is not None and _torch_class(target) is not None)
    ):
        return
    if isinstance(target, str) and trust:
        cls, why = trusted_class(target, trust)
        if cls is not None:
            return
        if why:
            raise ConfigError(
                f"{key}._target_={target!r} is not allowed in a saved config even with "
                f"{TRUST_KEY}={list(trust)}: {why}. Refusing to run it."
            )
    package = target.split(".", 1)[0] if isinstance(target, str) else "my_project"
    raise ConfigError(
        f"{key}._target_={target!r} is not allowed in a saved config: only the project's "
        "models, nets, priors, DataModules and metrics, and torch.nn / torch.optim classes can "
        "be rebuilt from a checkpoint. If it is a class of your own package, pass "
        f"{TRUST_KEY}=[{package}] (gan-generate, gan-evaluate, train.py; never read from the "
        "checkpoint) or model_config=<your config> (gan-generate, gan-evaluate). Refusing to "
        "run it; do not use checkpoints from sources you do not trust."
    )


def check_trusted(node: Any, key: str, trust: Iterable[str] = ()) -> None:
    """Raise :class:`ConfigError` unless every target and value under ``node`` is allowed
    (the project's allowlist, plus classes under the ``trust`` prefixes)."""
    trust = tuple(trust)
    if isinstance(node, Mapping):
        target = node.get("_target_")
        if target is not None:
            _check_target(target, key, trust)
        for name, value in node.items():
            name = str(name)
            if name.startswith("_") and name.endswith("_") and name not in HYDRA_KEYS:
                raise ConfigError(f"{key}.{name} is not allowed in a saved config.")
            check_trusted(value, f"{key}.{name}", trust)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            check_trusted(value, f"{key}[{index}]", trust)
    elif isinstance(node, str) and "${" in node:
        raise ConfigError(
            f"{key}={node!r}: saved configs are resolved, so an interpolation here means the "
            "file was edited; refusing it."
        )


#: The nodes of a saved run config that are ever instantiated from a checkpoint.
REBUILT_NODES = ("model", "data", "metrics")


def _interpolations(node: Any, key: str) -> str | None:
    if isinstance(node, Mapping):
        for name, value in node.items():
            found = _interpolations(value, f"{key}.{name}" if key else str(name))
            if found:
                return found
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            found = _interpolations(value, f"{key}[{index}]")
            if found:
                return found
    elif isinstance(node, str) and "${" in node:
        return key
    return None


def check_saved_config(config: Mapping[str, Any], trust: Iterable[str] = ()) -> None:
    """A run config read from a checkpoint: no interpolation anywhere (it was saved resolved),
    and only allowed targets in the nodes that get rebuilt (model, data, metrics). Its own
    ``trust`` key (what the run that wrote it was given) is never used."""
    where = _interpolations(config, "")
    if where:
        raise ConfigError(
            f"{where} holds an interpolation (${{...}}); saved configs are resolved, so the "
            "checkpoint was edited. Refusing it."
        )
    for key in REBUILT_NODES:
        if config.get(key) is not None:
            check_trusted(config[key], key, trust)


def instantiate_trusted(node: Any, key: str, trust: Iterable[str] = (), **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node)`` after :func:`check_trusted` passed."""
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else node
    check_trusted(plain, key, trust)
    return instantiate(plain, **kwargs)
