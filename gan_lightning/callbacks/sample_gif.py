"""An animated GIF of the fixed-noise grids across epochs, written at the end of a run.

The seed reports compare epochs by eye ("for comparison between each epoch, please refer to
the attached notebook"); one looping GIF of the same latents shows the whole of training at a
glance. It reads the PNGs :class:`~gan_lightning.callbacks.samples.SampleGrid` wrote, so it
costs no generator passes and no memory during training, and it also works for a directory
of grids a previous session left behind.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from PIL import Image, ImageDraw, ImageFont
from pytorch_lightning.utilities import rank_zero_only

from gan_lightning.callbacks.base import frames
from gan_lightning.errors import ConfigError
from gan_lightning.runtime.filesystem import PICTURES
from gan_lightning.utils.images import log_animation

log = logging.getLogger(__name__)


def thin(items: list[Any], max_items: int) -> list[Any]:
    """At most ``max_items`` evenly spaced items, always keeping the first and the last."""
    if max_items < 2 or len(items) <= max_items:
        return list(items)
    step = (len(items) - 1) / (max_items - 1)
    return [items[round(i * step)] for i in range(max_items)]


def read_frame(path: Path) -> Image.Image:
    """A sample grid as an RGB frame (PIL raises ``OSError`` for a half-written file)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def labelled(image: Image.Image, text: str, height: int) -> Image.Image:
    """``image`` with a ``height``-pixel strip above it carrying ``text``."""
    image = image.convert("RGB")
    out = Image.new("RGB", (image.width, image.height + height), "black")
    out.paste(image, (0, height))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(8, height - 4))
    draw.text((4, height // 2), text, fill="white", font=font, anchor="lm")
    return out


class SampleGif(pl.Callback):
    """Collect ``samples_dir/epoch_*.png`` into ``path`` (a looping GIF) when training ends.

    Args:
        samples_dir: where SampleGrid writes its grids (``callbacks.sample_grid.dirpath``).
        path: the GIF to write.
        frame_ms / last_frame_ms: how long each frame / the final frame is shown.
        label_height: pixels of an "epoch N" strip above each frame (0: no label).
        max_frames: long runs are thinned to this many evenly spaced epochs (first and last kept).
    """

    def __init__(
        self,
        samples_dir: str = "samples",
        path: str = "samples/all_epochs.gif",
        pattern: str = "epoch_*.png",
        frame_ms: int = 500,
        last_frame_ms: int = 2000,
        label_height: int = 16,
        max_frames: int = 100,
    ) -> None:
        if frame_ms < 1 or last_frame_ms < 1 or max_frames < 1 or label_height < 0:
            raise ConfigError(
                "callbacks.sample_gif: frame_ms, last_frame_ms and max_frames must be >= 1, "
                "label_height >= 0."
            )
        self.samples_dir = Path(samples_dir)
        self.path = Path(path)
        self.pattern = pattern
        self.frame_ms = int(frame_ms)
        self.last_frame_ms = int(last_frame_ms)
        self.label_height = int(label_height)
        self.max_frames = int(max_frames)

    def write(self, trainer: pl.Trainer | None = None) -> Path | None:
        """Build the GIF from the grids on disk (also usable after the fact, trainer=None)."""
        found = thin(frames(self.samples_dir, "epoch", self.pattern), self.max_frames)
        if not found:
            log.warning(
                "No sample grids matching %s in %s; no GIF written.", self.pattern, self.samples_dir
            )
            return None
        images = []
        for epoch, file in found:
            frame = PICTURES.attempt(None, lambda file=file: read_frame(file))
            if frame is None:  # a grid gone or half-written (a full disk): not essential
                continue
            if self.label_height:
                frame = labelled(frame, f"epoch {epoch}", self.label_height)
            images.append(frame)
        if not images:
            return None
        size = images[-1].size
        images = [f if f.size == size else f.resize(size) for f in images]
        saved = log_animation(
            trainer, "samples/all_epochs", images, self.path, self.frame_ms, self.last_frame_ms
        )
        if saved is not None:
            log.info("Saved %d-frame sample GIF %s", len(images), saved)
        return saved

    @rank_zero_only
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.write(trainer)
