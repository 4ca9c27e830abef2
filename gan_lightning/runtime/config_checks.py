"""Every config value a user can set, checked before anything is built or any data touched.

Hydra hands the classes whatever the command line said: ``data.batch_size=abc`` arrives as the
string ``'abc'`` and fails deep inside a DataLoader, ``trainer.precision=bogus`` inside
Lightning, ``model.latent_dim=0`` inside ``torch.randn``. :func:`check_config` walks the
composed config first and checks each value against the *type hints of the class it will be
passed to* (every ``_target_`` node, the Trainer included): one rule for every class, current
and future, instead of a check per key. Then the combinations no single class can see (a
strategy for several devices, more devices than exist). Every failure is a one-line
:class:`ConfigError` naming the key, the value and what it must be.

The same rule serves every app: an app's own top-level keys (``ckpt``, ``n``, ``seed``, ...)
are the fields of a dataclass, checked by :func:`app_args` against its type hints exactly as a
``_target_`` node is checked against its class's signature (training's are :class:`RunArgs`).

Two kinds of input a type check cannot see are refused too, because they would otherwise be
ignored without a word: a top-level key the training config does not have (``+lr_typo=1``;
only keys an experiment file defines and interpolates, such as ``lr``, are extension
points), and Trainer values that Lightning accepts but that make no sense
(:data:`TRAINER_RANGES`: ``log_every_n_steps=0`` never logs, ``limit_train_batches=0``
never trains, ``val_check_interval=0`` ...).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import os
import re
import types
import typing
from functools import cache
from typing import Any, TypeVar

import torch
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.precision import resolve_precision


@dataclasses.dataclass
class RunArgs:
    """The top-level keys of ``conf/config.yaml`` (training) and what they must be."""

    task_name: str
    seed: int | None
    resume: typing.Literal["auto"] | None
    ckpt_path: str | None
    trust: list[str] | None
    optimized_metric: str | None
    num_threads: int | None
    matmul_precision: typing.Literal["highest", "high", "medium"] | None


#: Config groups whose nodes are built from ``_target_`` (lists of targets for the rest).
TARGET_NODES = ("data", "model", "metrics", "trainer")
TARGET_GROUPS = ("callbacks", "logger")
#: Other top-level nodes of conf/config.yaml (``paths``; ``hydra`` during composition).
OTHER_NODES = ("paths", "hydra")
#: The keys of conf/paths/default.yaml.
PATHS_KEYS = ("root_dir", "data_dir", "log_dir", "output_dir")


def _positive(value: Any) -> bool:
    return value >= 1


#: Trainer keys whose values Lightning accepts although they cannot be meant:
#: key -> (whether a value is fine, what the value must be and why).
TRAINER_RANGES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "log_every_n_steps": (
        _positive,
        "must be >= 1 (batches between logged training scalars; 0 would never log them)",
    ),
    "val_check_interval": (
        lambda v: v > 0 if isinstance(v, float) else v >= 1,
        "must be a fraction of an epoch in (0, 1] or a number of batches >= 1 (0 would "
        "validate at every batch or never; to skip validation use trainer.limit_val_batches=0)",
    ),
    "check_val_every_n_epoch": (
        _positive,
        "must be >= 1 or null (to skip validation use trainer.limit_val_batches=0)",
    ),
    "limit_train_batches": (
        lambda v: v > 0,
        "must be > 0 (a fraction of the epoch or a number of batches; 0 would train nothing)",
    ),
    "max_epochs": (
        lambda v: v >= 1 or v == -1,
        "must be >= 1, or -1 for no epoch limit (0 would train nothing)",
    ),
    "min_epochs": (lambda v: v >= 0, "must be >= 0"),
    "num_sanity_val_steps": (
        lambda v: v >= -1,
        "must be >= 0, or -1 to run the whole validation set before training",
    ),
    "accumulate_grad_batches": (_positive, "must be >= 1"),
}

Args = TypeVar("Args")


# --------------------------------------------------------------------------- type hints
def _signature_of(function: Any) -> inspect.Signature:
    try:
        return inspect.signature(function, eval_str=True)
    except (NameError, TypeError, ValueError):
        return inspect.signature(function)


@cache
def _parameters(target: str) -> tuple[dict[str, Any], bool]:
    """``({name: annotation}, takes arbitrary keywords)`` of what ``target`` is called with.

    A class whose ``__init__`` passes ``**kwargs`` on (``MNISTDataModule`` to
    ``BaseDataModule``) contributes its base classes' parameters too."""
    obj = get_object(target)
    functions = (
        [c.__dict__["__init__"] for c in obj.__mro__ if "__init__" in c.__dict__]
        if isinstance(obj, type)
        else [obj]
    )
    params: dict[str, Any] = {}
    for function in functions:
        passes_on = False
        for name, param in _signature_of(function).parameters.items():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                passes_on = True
            elif name != "self" and param.kind is not inspect.Parameter.VAR_POSITIONAL:
                params.setdefault(name, param.annotation)
        if not passes_on:
            return params, False
    return params, True


def _describe(annotation: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if annotation in names:
        return names[annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(annotation) if a is not type(None)]
        parts = [p for p in parts if p]
        tail = " or null" if type(None) in typing.get_args(annotation) else ""
        return " or ".join(dict.fromkeys(parts)) + tail
    if origin in (list, tuple, collections.abc.Sequence):
        args = typing.get_args(annotation)
        item = _describe(args[0]) if args and args[0] is not Any else ""
        plural = {"an integer": "integers", "a number": "numbers", "a string": "strings"}
        return f"a list of {plural[item]}" if item in plural else "a list"
    if origin in (dict, collections.abc.Mapping) or annotation in (dict, collections.abc.Mapping):
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))


def matches(value: Any, annotation: Any) -> bool:
    """Whether a config value can be passed where ``annotation`` is expected (unknown or
    object annotations accept anything: only what a config can get wrong is checked)."""
    if annotation in (inspect.Parameter.empty, Any, object):
        return True
    if value is None or annotation is type(None):
        return value is None and (
            annotation is type(None) or type(None) in typing.get_args(annotation)
        )
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, ListConfig)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(matches, value, args))
        item = args[0] if args else Any
        return all(matches(v, item) for v in value)
    if origin in (dict, collections.abc.Mapping) or annotation in (dict, collections.abc.Mapping):
        return isinstance(value, (dict, DictConfig))
    if isinstance(annotation, type):  # a class: a node that builds it, or an instance of it
        return isinstance(value, (dict, DictConfig, annotation))
    return True  # other typing constructs (callables, type variables): nothing to check


def check_node(node: Any, key: str) -> None:
    """Check a ``_target_`` node's keys and values against its class, recursively."""
    if not isinstance(node, (dict, DictConfig)) or "_target_" not in node:
        return
    target = str(node["_target_"])
    try:
        params, var_kwargs = _parameters(target)
    except Exception as err:  # noqa: BLE001 - an unimportable target
        raise ConfigError(f"{key}._target_={target!r} cannot be imported ({err}).") from err
    for name, value in node.items():
        name = str(name)
        if name.startswith("_") and name.endswith("_"):
            continue
        if isinstance(value, (dict, DictConfig)) and "_target_" in value:
            check_node(value, f"{key}.{name}")
            continue
        if isinstance(value, (list, ListConfig)):
            for index, item in enumerate(value):
                check_node(item, f"{key}.{name}[{index}]")
        if name not in params:
            if var_kwargs:
                continue
            raise ConfigError(
                f"{key}.{name} is not an option of {target.rsplit('.', 1)[-1]}; options: "
                f"{', '.join(sorted(params))}."
            )
        annotation = params[name]
        if not matches(value, annotation):
            raise ConfigError(
                f"{key}.{name}={value!r} must be {_describe(annotation)}; fix it on the command "
                f"line (e.g. {key}.{name}=...) or in the config file."
            )


# --------------------------------------------------------------------------- an app's keys
def check_values(cfg: Any, schema: type, app: str) -> None:
    """Each of ``schema``'s fields present in ``cfg`` against the field's type hint."""
    for key, annotation in typing.get_type_hints(schema).items():
        if key in cfg and not matches(cfg[key], annotation):
            raise ConfigError(
                f"{key}={cfg[key]!r} must be {_describe(annotation)}; fix it on the command "
                f"line ({key}=...); `{app} --help` lists the keys."
            )


def _accepts_text(annotation: Any) -> bool:
    return annotation is str or str in typing.get_args(annotation)


def app_args(cfg: DictConfig, schema: type[Args], app: str) -> Args:
    """An app's top-level keys, checked, as an instance of the dataclass ``schema``.

    A number given for a text key (``out=2024``: Hydra reads it as an integer) is the text
    the user typed; everything else must match the field's type as it is."""
    hints = typing.get_type_hints(schema)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(schema):
        if field.name not in cfg:
            continue
        value = cfg[field.name]
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
        elif (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and _accepts_text(hints[field.name])
            and not matches(value, hints[field.name])
        ):
            value = str(value)
        values[field.name] = value
    check_values(values, schema, app)
    return schema(**values)


# --------------------------------------------------------------------------- combinations
def _device_count(accelerator: str) -> int:
    if accelerator in ("gpu", "cuda"):
        return torch.cuda.device_count()
    if accelerator == "cpu":
        return os.cpu_count() or 1
    return torch.cuda.device_count() or (os.cpu_count() or 1)  # auto


def resolved_precision(trainer: DictConfig) -> DictConfig:
    """The trainer node with ``precision=auto`` (the project's, not Lightning's) resolved."""
    if str(trainer.get("precision")) != "auto":
        return trainer
    trainer = trainer.copy()
    trainer.precision = resolve_precision("auto", trainer.get("accelerator"))
    return trainer


def check_trainer(trainer: dict[str, Any]) -> None:
    """Device counts and strategies that cannot work together."""
    accelerator = str(trainer.get("accelerator", "auto"))
    devices = trainer.get("devices", "auto")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but this machine has no CUDA GPU; use "
            "trainer=cpu (or trainer.accelerator=cpu)."
        )
    if isinstance(devices, int) and not isinstance(devices, bool):
        available = _device_count(accelerator)
        if devices == 0 or devices < -1:
            raise ConfigError(f"trainer.devices={devices} must be >= 1, -1 (all) or auto.")
        if devices > available:
            kind = "CPU cores" if accelerator == "cpu" or not torch.cuda.is_available() else "GPUs"
            raise ConfigError(
                f"trainer.devices={devices} but this machine has {available} {kind}; use at "
                f"most trainer.devices={available}."
            )
    if trainer.get("sync_batchnorm") and not torch.cuda.is_available():
        raise ConfigError(
            "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm has no CPU "
            "implementation); drop it on CPU, where DDP keeps BatchNorm statistics in step by "
            "broadcasting them from rank 0."
        )
    strategy = str(trainer.get("strategy", "auto"))
    nodes = trainer.get("num_nodes", 1)
    if "ddp" in strategy and devices == 1 and nodes in (1, None):
        raise ConfigError(
            f"trainer.strategy={strategy} with trainer.devices=1 on one node: DDP needs several "
            "processes; set trainer.devices=N (e.g. trainer=ddp trainer.devices=2) or drop the "
            "strategy."
        )


def check_trainer_ranges(trainer: dict[str, Any]) -> None:
    """:data:`TRAINER_RANGES`: values Lightning takes that would silently do nothing useful."""
    for key, (fine, must) in TRAINER_RANGES.items():
        value = trainer.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not fine(value):
            raise ConfigError(f"trainer.{key}={value} {must}.")


def interpolated(text: str, key: str) -> bool:
    """Whether the config ``text`` (unresolved YAML) interpolates ``${key}`` or
    ``${key.<sub>}``."""
    return re.search(r"\$\{\s*" + re.escape(key) + r"\s*[}.]", text) is not None


def check_unknown_keys(cfg: DictConfig) -> None:
    """Top-level keys (and ``paths.*`` keys) that nothing reads, e.g. added with ``+key=``:
    refused, since they would be ignored. A key an experiment file defines for interpolation
    (``lr: 0.0002`` read as ``${lr}``) is an extension point and is kept."""
    known = (
        {f.name for f in dataclasses.fields(RunArgs)}
        | set(TARGET_NODES)
        | set(TARGET_GROUPS)
        | set(OTHER_NODES)
    )
    text = OmegaConf.to_yaml(cfg, resolve=False)
    for key in cfg:
        key = str(key)
        if key not in known and not interpolated(text, key):
            raise ConfigError(
                f"{key} is not a key of the training config (nothing reads it, so it would be "
                f"ignored): drop +{key}=..., or put it where it belongs (e.g. model.{key}=..., "
                f"trainer.{key}=...). Top-level keys: {', '.join(sorted(known - {'hydra'}))}."
            )
    paths = cfg.get("paths")
    for key in paths or {}:
        if str(key) not in PATHS_KEYS and not interpolated(text, f"paths.{key}"):
            raise ConfigError(
                f"paths.{key} is not a key of paths (nothing reads it, so it would be ignored); "
                f"paths has {', '.join(PATHS_KEYS)}."
            )


def check_config(cfg: DictConfig) -> None:
    """All checks, in the order a user would fix them; raises :class:`ConfigError`."""
    check_unknown_keys(cfg)
    check_values(cfg, RunArgs, "python train.py")
    if cfg.get("num_threads") is not None and cfg.num_threads < 1:
        raise ConfigError(f"num_threads={cfg.num_threads} must be >= 1 (or null).")
    if cfg.get("seed") is not None and not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"seed={cfg.seed} must be in [0, 2**32) (numpy's range), or null.")
    for key in TARGET_NODES:
        if cfg.get(key) is not None:
            check_node(resolved_precision(cfg[key]) if key == "trainer" else cfg[key], key)
    for group in TARGET_GROUPS:
        for name, node in (cfg.get(group) or {}).items():
            check_node(node, f"{group}.{name}")
    if cfg.get("trainer") is not None:
        trainer = OmegaConf.to_container(cfg.trainer, resolve=True)
        check_trainer_ranges(trainer)
        check_trainer(trainer)
