"""Load a trained model from a gan-lightning checkpoint alone: no data, no Hydra run.

Every checkpoint carries the resolved run config in ``checkpoint["gan_lightning"]["config"]``
(plain containers, see :mod:`gan_lightning.modules.base`), so the model is rebuilt from its
own ``model`` config and the weights loaded into it. Loading uses
``torch.load(weights_only=True)``: a checkpoint from an untrusted source can hold tensors and
plain containers, never code that runs on unpickling; and its config is checked against an
allowlist before anything in it is instantiated (:mod:`gan_lightning.runtime.safe_config`), widened
only by the loader's own ``trust`` prefixes. With ``model_config`` the model is built from the
user's own config file instead, and only the weights (and counters) are read from the
checkpoint. The generate and evaluate CLIs, and resuming, all read checkpoints through this
module.

Writing goes through :class:`AtomicCheckpointIO` (a Trainer plugin, ``conf/trainer/default.yaml``):
every checkpoint is written to a temporary file in the same directory, fsynced and renamed over
the old one, so a process killed while saving leaves the previous checkpoint intact. A write
that fails (a full or read-only disk) removes its temporary file and raises a
:class:`~gan_lightning.errors.FileSystemError` naming the checkpoint, the space it needs and
the space left; the previous checkpoint is untouched.

Reading checks the file first (:func:`~gan_lightning.runtime.filesystem.check_input_file`):
an empty file, a directory or an unreadable path is named as such, not as a pickle error.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from gan_lightning import __version__
from gan_lightning.errors import ConfigError, FileSystemError
from gan_lightning.modules.base import CHECKPOINT_FORMAT, CHECKPOINT_KEY
from gan_lightning.runtime.filesystem import atomic_save, check_input_file
from gan_lightning.runtime.safe_config import (
    check_saved_config,
    check_trust,
    instantiate_trusted,
)

NOT_OURS = (
    "{path} is not a gan-lightning checkpoint ({why}). Pass a .ckpt from a run directory, "
    "e.g. logs/train/runs/<date>/checkpoints/last.ckpt."
)


def read_checkpoint(
    path: str | Path,
    map_location: Any = "cpu",
    trust: Iterable[str] = (),
    check_config: bool = True,
) -> dict[str, Any]:
    """The checkpoint dict, checked to be ours; :class:`ConfigError` with the fix otherwise.

    ``trust``: the loader's module prefixes whose classes the saved config may name;
    ``check_config=False`` when the saved config is not going to be instantiated (the model is
    rebuilt from the user's own ``model_config``)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"ckpt={path} does not exist. Pass the path of a .ckpt file.")
    if path.is_dir():
        found = sorted(path.glob("*.ckpt")) or sorted(path.glob("checkpoints/*.ckpt"))
        hint = f" It holds {', '.join(p.name for p in found[:5])}." if found else ""
        raise ConfigError(f"ckpt={path} is a directory; pass one .ckpt file.{hint}")
    try:
        check_input_file(path, "the checkpoint", "pass a complete .ckpt written by a run")
    except FileSystemError as err:
        raise ConfigError(str(err)) from err
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head != b"PK\x03\x04" and not head.startswith(b"\x80"):
        why = "not a file written by torch.save: neither a zip archive nor a pickle"
        raise ConfigError(NOT_OURS.format(path=path, why=why))
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        # torch's message suggests weights_only=False, which would run the file's code;
        # the line naming what it holds is the useful one.
        why = next((line for line in lines if "Unsupported global" in line), lines[0])[:200]
        raise ConfigError(NOT_OURS.format(path=path, why=f"not loadable safely: {why}")) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        why = str(err).splitlines()[0][:200]
        raise ConfigError(NOT_OURS.format(path=path, why=f"unreadable: {why}")) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(NOT_OURS.format(path=path, why="no Lightning state_dict"))
    state = checkpoint.get(CHECKPOINT_KEY)
    config = state.get("config") if isinstance(state, dict) else None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise ConfigError(NOT_OURS.format(path=path, why=f"no '{CHECKPOINT_KEY}' run config"))
    check_format(path, state)
    if check_config:
        try:
            check_saved_config(config, check_trust(trust))
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from err
    return checkpoint


def read_own_config(path: str | Path) -> dict[str, Any]:
    """The user's own config file (``model_config=``): a composed run config such as a run's
    ``.hydra/config.yaml`` (its ``model``/``data``/``metrics`` nodes are used) or a bare model
    node with a ``_target_``. Returns those nodes, interpolations resolved within the file."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"model_config={file} does not exist; pass a YAML file of your config.")
    try:
        config = OmegaConf.load(file)
    except (OSError, ValueError, OmegaConfBaseException) as err:
        raise ConfigError(f"model_config={file} is not a YAML config: {err}") from err
    if not OmegaConf.is_dict(config) or ("model" not in config and "_target_" not in config):
        raise ConfigError(
            f"model_config={file} holds neither a model node (model: {{_target_: ...}}) nor a "
            "_target_; pass a run's .hydra/config.yaml or a file with your model config."
        )
    if "model" not in config:
        config = OmegaConf.create({"model": config})
    own: dict[str, Any] = {}
    for key in OWN_NODES:
        if config.get(key) is None:
            continue
        try:
            own[key] = OmegaConf.to_container(config[key], resolve=True)
        except OmegaConfBaseException as err:
            raise ConfigError(
                f"model_config={file}: {key} cannot be resolved outside its run "
                f"({str(err).splitlines()[0]}); write the value in the file."
            ) from err
    return own


#: The nodes of a user's own config (``model_config=``) that replace a checkpoint's.
OWN_NODES = ("model", "data", "metrics")


def check_format(path: Path, state: dict[str, Any]) -> None:
    """Checkpoints of another checkpoint format (another major version of the project) are
    refused with the version that wrote them, instead of failing on a missing key later."""
    written = state.get("format", 1)
    if written != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{path} was written by gan-lightning {state.get('version', '?')} (checkpoint "
            f"format {written}); this is gan-lightning {__version__} (format "
            f"{CHECKPOINT_FORMAT}). Use the version that wrote it, or retrain."
        )


def load_module(
    path: str | Path,
    map_location: Any = "cpu",
    trust: Iterable[str] = (),
    model_config: str | Path | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the LightningModule of a checkpoint and load its weights.

    Returns ``(module, config)``: the module in eval mode on ``map_location``'s device, and the
    resolved run config it was trained with (``config["model"]``, ``config["data"]``, ...).
    ``trust``: module prefixes of the loader's own packages whose classes the saved config may
    name (``["my_project"]``). ``model_config``: build the model from this file of the user's
    instead (:func:`read_own_config`); the checkpoint then gives only the weights.
    """
    from hydra.utils import instantiate

    checkpoint = read_checkpoint(path, map_location, trust, check_config=model_config is None)
    config = checkpoint[CHECKPOINT_KEY]["config"]
    if model_config is not None:
        config = {**config, **read_own_config(model_config)}
    try:
        if model_config is not None:  # the user's own file: built like their training run
            module = instantiate(config["model"])
        else:
            module = instantiate_trusted(config["model"], "model", check_trust(trust))
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - name the checkpoint, keep the cause chained
        source = f"model_config={model_config}" if model_config else "its saved config"
        raise ConfigError(
            f"Could not rebuild the model of {path} from {source} "
            f"(model._target_={config['model'].get('_target_')!r}): {err}"
        ) from err
    source = f"model_config={model_config}" if model_config else "its config"
    try:
        missing, unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False)
    except RuntimeError as err:  # tensors of other shapes (another width, another net)
        why = str(err).strip().splitlines()[1:2] or [str(err)]
        raise ConfigError(
            f"The weights in {path} do not fit the model {source} builds ({why[0].strip()})."
        ) from err
    if missing or unexpected:
        raise ConfigError(
            f"The weights in {path} do not fit the model {source} builds "
            f"(missing: {list(missing)[:5]}, unexpected: {list(unexpected)[:5]}); was the "
            "checkpoint written by another version of gan-lightning?"
        )
    if hasattr(module, "load_extra_checkpoint_state"):
        module.load_extra_checkpoint_state(checkpoint[CHECKPOINT_KEY])
    module.run_config = config
    device = _device_of(map_location)
    if device is not None:
        module.to(device)
    module.eval()
    return module, config


def _device_of(map_location: Any) -> torch.device | None:
    if isinstance(map_location, (str, torch.device)):
        return torch.device(map_location)
    return None


def use_ema(module: Any, ema: bool | None) -> None:
    """Sample from the EMA generator (``True``), the raw one (``False``) or as the model was
    trained (``None``); the CLIs' ``ema=`` key."""
    if ema is None:
        return
    if ema and getattr(module, "generator_ema", None) is None:
        raise ConfigError("ema=true but this checkpoint has no EMA generator (ema_decay=null).")
    module.sample_with_ema = bool(ema)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to ``.<name>.tmp-<pid>`` next to the target, fsync, rename over it; on a
    failed write, remove the temporary file and raise :class:`FileSystemError` (the previous
    checkpoint is untouched)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        target = Path(path)
        if target.parent.is_dir():
            remove_stale_temporaries(target)
        atomic_save(
            checkpoint,
            target,
            "the checkpoint",
            "free space on that disk, or move paths.log_dir to a larger one",
        )


def remove_stale_temporaries(target: Path) -> None:
    """Delete half-written ``.<name>.tmp-<pid>`` files of ``target`` whose process is gone
    (killed mid-save): they are never read, only taking disk space."""
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        try:
            os.kill(int(stale.name.rsplit("-", 1)[1]), 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except (ValueError, PermissionError):
            continue
