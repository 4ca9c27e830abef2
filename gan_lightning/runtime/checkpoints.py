"""Load a trained model from a gan-lightning checkpoint alone: no data, no Hydra run.

Every checkpoint carries the resolved run config in ``checkpoint["gan_lightning"]["config"]``
(plain containers, see :mod:`gan_lightning.modules.base`), so the model is rebuilt from its
own ``model`` config and the weights loaded into it. Loading uses
``torch.load(weights_only=True)``: a checkpoint from an untrusted source can hold tensors and
plain containers, never code that runs on unpickling; and its config is checked against an
allowlist before anything in it is instantiated (:mod:`gan_lightning.runtime.safe_config`). The
generate and evaluate CLIs, and resuming, all read checkpoints through this module.

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
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from gan_lightning import __version__
from gan_lightning.errors import ConfigError, FileSystemError
from gan_lightning.modules.base import CHECKPOINT_FORMAT, CHECKPOINT_KEY
from gan_lightning.runtime.filesystem import atomic_save, check_input_file
from gan_lightning.runtime.safe_config import check_saved_config, instantiate_trusted

NOT_OURS = (
    "{path} is not a gan-lightning checkpoint ({why}). Pass a .ckpt from a run directory, "
    "e.g. logs/train/runs/<date>/checkpoints/last.ckpt."
)


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint dict, checked to be ours; :class:`ConfigError` with the fix otherwise."""
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
    try:
        check_saved_config(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    return checkpoint


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


def load_module(path: str | Path, map_location: Any = "cpu") -> tuple[Any, dict[str, Any]]:
    """Rebuild the LightningModule of a checkpoint and load its weights.

    Returns ``(module, config)``: the module in eval mode on ``map_location``'s device, and the
    resolved run config it was trained with (``config["model"]``, ``config["data"]``, ...).
    """
    checkpoint = read_checkpoint(path, map_location)
    config = checkpoint[CHECKPOINT_KEY]["config"]
    try:
        module = instantiate_trusted(config["model"], "model")
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - name the checkpoint, keep the cause chained
        raise ConfigError(
            f"Could not rebuild the model of {path} from its saved config "
            f"(model._target_={config['model'].get('_target_')!r}): {err}"
        ) from err
    missing, unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False)
    if missing or unexpected:
        raise ConfigError(
            f"The weights in {path} do not fit the model its config builds "
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
