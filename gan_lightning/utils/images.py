"""The one image-logging helper: a file in the run directory plus the run's loggers.

Every picture a callback makes (sample grids, interpolations, reconstructions, manifolds,
density plots, loss curves) goes through :func:`log_image`, so each logger gets the format
it needs:

* TensorBoard: ``add_image`` with a (3, H, W) float tensor in [0, 1];
* W&B: ``wandb.Image`` from **uint8** arrays (W&B casts float images to uint8 without
  scaling, which renders [0, 1] floats black);
* CSV and no logger: nothing; the PNG on disk is the record.

Animations (the sample-grid GIF) go through :func:`log_animation`: a GIF on disk, a
``wandb.Video`` for W&B (played in the media panel); TensorBoard's video support needs
moviepy, and its image slider over the per-epoch grids shows the same thing, so it gets none.

Pictures are not essential to a run: a PNG or GIF that cannot be written (a full or
read-only disk) is warned about once and removed if half-written, and training goes on
(:data:`gan_lightning.runtime.filesystem.PICTURES`, docs/safety.md).

Images are logged at the step Lightning uses for scalars (real batches, not the optimizer
steps a GAN makes two of per batch), so images and curves line up on one x-axis.
Callers hand over float images in [0, 1] (use ``utils.pixels.to_unit``). Rank 0 only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from gan_lightning.runtime.filesystem import PICTURES

log = logging.getLogger(__name__)


def _loggers(trainer: Any) -> list[Any]:
    if trainer is None:
        return []
    return list(getattr(trainer, "loggers", []) or [])


def logging_step(trainer: Any) -> int:
    """The x-axis value of scalars, for pictures too: real batches trained on.

    Every module of the project counts the real batches it trained on (``batches_seen``, the
    project's step unit, checkpointed). Lightning logs scalars at its count of batches that
    stepped, which is the same number whenever a picture is drawn (epoch ends, train end),
    for the GAN's two optimizers per batch as for the VAE's one.
    """
    if trainer is None:
        return 0
    module = getattr(trainer, "lightning_module", None)
    step = getattr(module, "batches_seen", None)
    return int(step if step is not None else getattr(trainer, "global_step", 0))


def to_uint8_hwc(image: torch.Tensor) -> Any:
    """(C, H, W) float in [0, 1] -> numpy uint8 (H, W) for grey, (H, W, C) for colour.

    The one conversion of pictures to bytes, for the PNG and for every logger alike: ``x * 255
    + 0.5``, floored (torchvision's ``save_image`` rule), so a W&B image is the PNG, pixel for
    pixel (round-half-to-even would differ on exact halves)."""
    array = (image.detach().float().cpu() * 255 + 0.5).clamp_(0, 255).to(torch.uint8)
    array = array.permute(1, 2, 0).numpy()
    return array[:, :, 0] if array.shape[2] == 1 else array


def figure_to_tensor(fig: Any) -> torch.Tensor:
    """A matplotlib ``Figure`` rendered by Agg -> (3, H, W) float in [0, 1], for
    :func:`log_image` (plots go to the loggers like any other picture)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4) uint8
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255.0


@rank_zero_only
def log_image(
    trainer: Any,
    key: str,
    image01: torch.Tensor,
    path: str | Path | None = None,
    step: int | None = None,
    caption: str | None = None,
) -> Path | None:
    """Save ``image01`` ((C, H, W) or (H, W) float in [0, 1]) to ``path`` and send it to
    every logger of ``trainer`` (``None``: file only). Returns the saved path (``None`` when
    the file could not be written: warned once, the loggers still get the picture)."""
    image = image01.detach().float().cpu().clamp(0, 1)
    if image.dim() == 2:
        image = image.unsqueeze(0)  # (1, H, W)
    saved: Path | None = None
    if path is not None:
        saved = PICTURES.attempt(path, lambda: _save_png(image, Path(path)))
    if step is None:
        step = logging_step(trainer)
    for logger in _loggers(trainer):
        try:
            _send_image(logger, key, image, step, caption)
        except Exception as err:  # noqa: BLE001 - a logger hiccup must never kill training
            log.warning("Could not log image %r to %s: %s", key, type(logger).__name__, err)
    return saved


def _save_png(image: torch.Tensor, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8_hwc(image)
    if pixels.ndim == 2:  # grey pictures are stored as RGB PNGs, as torchvision saves them
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    Image.fromarray(pixels).save(path)
    return path


def _send_image(logger: Any, key: str, image: torch.Tensor, step: int, caption: str | None) -> None:
    if isinstance(logger, TensorBoardLogger):
        rgb = image if image.shape[0] != 1 else image.expand(3, -1, -1)  # (3, H, W)
        logger.experiment.add_image(key, rgb, global_step=step)
    elif isinstance(logger, WandbLogger):
        kwargs = {"caption": [caption]} if caption else {}
        logger.log_image(key=key, images=[to_uint8_hwc(image)], step=step, **kwargs)
    # CSVLogger and others: no image channel; the PNG on disk is the record.


@rank_zero_only
def log_animation(
    trainer: Any,
    key: str,
    frames: Sequence[Image.Image],
    path: str | Path,
    frame_ms: int = 500,
    last_frame_ms: int | None = 2000,
    step: int | None = None,
) -> Path | None:
    """Write ``frames`` (PIL images of one size) as a looping GIF and send it to W&B.

    ``last_frame_ms`` holds the final frame longer, so a viewer sees where training ended.
    """
    if not frames:
        return None
    durations = [int(frame_ms)] * len(frames)
    if last_frame_ms is not None:
        durations[-1] = int(last_frame_ms)
    first, *rest = frames

    def save() -> Path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        first.save(path, save_all=True, append_images=rest, duration=durations, loop=0)
        return Path(path)

    saved = PICTURES.attempt(path, save)
    if saved is None:
        return None
    if step is None:
        step = logging_step(trainer)
    for logger in _loggers(trainer):
        if not isinstance(logger, WandbLogger):
            continue
        try:
            import wandb

            logger.log_metrics({key: wandb.Video(str(saved), format="gif")}, step=step)
        except Exception as err:  # noqa: BLE001 - a logger hiccup must never kill training
            log.warning("Could not log animation %r to %s: %s", key, type(logger).__name__, err)
    return saved
