"""The one image-logging helper: a PNG in the run directory plus the run's loggers.

Every picture a callback makes (sample grids, reconstructions, manifolds, density plots,
loss curves) goes through :func:`log_image`, so each logger gets the format it needs:

* TensorBoard: ``add_image`` with a (3, H, W) float tensor in [0, 1];
* W&B: ``log_image`` with **uint8** arrays (W&B casts float images to uint8 without
  scaling, which renders [0, 1] floats black);
* CSV: nothing (it has no image support); the PNG on disk is the record.

Callers hand over float images in [0, 1] (use ``utils.pixels.to_unit``). Call it on rank 0.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

log = logging.getLogger(__name__)


def _loggers(trainer: Any) -> list[Any]:
    if trainer is None:
        return []
    return list(getattr(trainer, "loggers", []) or [])


def log_image(
    trainer: Any,
    key: str,
    image: torch.Tensor,
    path: str | Path | None = None,
    step: int | None = None,
    caption: str | None = None,
) -> Path | None:
    """Save ``image`` ((C, H, W) float in [0, 1]) to ``path`` and send it to every logger."""
    image = image.detach().float().cpu().clamp(0, 1)
    if image.dim() == 2:
        image = image.unsqueeze(0)
    saved: Path | None = None
    if path is not None:
        saved = Path(path)
        saved.parent.mkdir(parents=True, exist_ok=True)
        save_image(image, saved)
    if step is None and trainer is not None:
        step = int(getattr(trainer, "global_step", 0))
    for logger in _loggers(trainer):
        try:
            _send(logger, key, image, step, caption)
        except Exception as err:  # noqa: BLE001 - a logger hiccup must never kill training
            log.warning("Could not log image %r to %s: %s", key, type(logger).__name__, err)
    return saved


def _send(logger: Any, key: str, image: torch.Tensor, step: int | None, caption: str | None) -> None:
    name = type(logger).__name__
    if name == "TensorBoardLogger":
        rgb = image if image.shape[0] != 1 else image.expand(3, -1, -1)
        logger.experiment.add_image(key, rgb, global_step=step)
    elif name == "WandbLogger":
        array = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        if array.shape[2] == 1:
            array = array[:, :, 0]
        logger.log_image(key=key, images=[array], step=step, caption=[caption] if caption else None)
    # CSVLogger and others: no image channel; the PNG on disk is the record.
