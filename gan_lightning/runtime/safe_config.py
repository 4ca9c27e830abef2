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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from gan_lightning.errors import ConfigError

#: The project's classes a saved config may name, by their dotted path.
PROJECT_TARGETS = frozenset(
    {
        "gan_lightning.modules.gan.GAN",
        "gan_lightning.modules.vae.VAE",
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


def check_trusted(node: Any, key: str) -> None:
    """Raise :class:`ConfigError` unless every target and value under ``node`` is allowed."""
    if isinstance(node, Mapping):
        target = node.get("_target_")
        if target is not None:
            allowed = isinstance(target, str) and (
                target in PROJECT_TARGETS
                or (_TORCH_TARGET.match(target) is not None and _torch_class(target) is not None)
            )
            if not allowed:
                raise ConfigError(
                    f"{key}._target_={target!r} is not allowed in a saved config: only the "
                    "project's models, nets, priors, DataModules and metrics, and torch.nn / "
                    "torch.optim classes can be rebuilt from a checkpoint. Refusing to run it; "
                    "do not use checkpoints from sources you do not trust."
                )
        for name, value in node.items():
            name = str(name)
            if name.startswith("_") and name.endswith("_") and name not in HYDRA_KEYS:
                raise ConfigError(f"{key}.{name} is not allowed in a saved config.")
            check_trusted(value, f"{key}.{name}")
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            check_trusted(value, f"{key}[{index}]")
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


def check_saved_config(config: Mapping[str, Any]) -> None:
    """A run config read from a checkpoint: no interpolation anywhere (it was saved resolved),
    and only allowed targets in the nodes that get rebuilt (model, data, metrics)."""
    where = _interpolations(config, "")
    if where:
        raise ConfigError(
            f"{where} holds an interpolation (${{...}}); saved configs are resolved, so the "
            "checkpoint was edited. Refusing it."
        )
    for key in REBUILT_NODES:
        if config.get(key) is not None:
            check_trusted(config[key], key)


def instantiate_trusted(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node)`` after :func:`check_trusted` passed."""
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else node
    check_trusted(plain, key)
    return instantiate(plain, **kwargs)
