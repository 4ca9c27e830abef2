"""The one shape of a picture callback, and the one naming scheme of the pictures.

Every picture a run draws (sample grids, reconstructions, latent manifolds, interpolations,
Figure 1 of the 1-D toy, training curves) is drawn the same way:

* **when**: every ``every_n_epochs`` epochs, every ``every_n_steps`` real batches (step 0
  included), and once more when training ends unless the last drawing already shows the final
  weights (``at_train_end``);
* **where**: on global rank zero only (every rank holds the same weights);
* **what it is called**: :func:`picture_path`, e.g. ``epoch_004_step_0004295.png``,
  ``epoch_000_linear.png``, ``step_0000100.png``; :func:`frames` reads those names back for
  the animations;
* **how it is logged**: through :func:`gan_lightning.utils.images.log_image` (a PNG in the run
  directory plus every logger);
* **when the disk fails** (full, read-only, a frame file gone): pictures are not essential;
  the failure is warned about once and training goes on
  (:data:`gan_lightning.runtime.filesystem.PICTURES`);
* **when it does not apply** (a VAE-only picture on a GAN, 1-D samples, a 10-D latent for a
  2-D manifold): :meth:`PictureCallback.pictures` raises :class:`Skip`, which is reported once
  in the log, so every callback can sit in the default list.

A subclass holds only what it draws: :meth:`PictureCallback.pictures`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.filesystem import PICTURES
from gan_lightning.utils.images import log_image
from gan_lightning.utils.pixels import to_unit

log = logging.getLogger(__name__)

#: The parts a picture's file name can carry, in this order.
NAME_PARTS = ("epoch", "step")
_PART = {"epoch": re.compile(r"epoch_(\d+)"), "step": re.compile(r"step_(\d+)")}


def picture_path(
    dirpath: str | Path, epoch: int | None = None, step: int | None = None, tag: str | None = None
) -> Path:
    """``<dirpath>/epoch_004_step_0004295_<tag>.png`` with the parts that are given.

    ``step`` is in real batches (the project's step unit). Epochs have 3 digits and steps 7,
    so names sort in training order for any run a CPU or GPU finishes in a week.
    """
    parts = []
    if epoch is not None:
        parts.append(f"epoch_{int(epoch):03d}")
    if step is not None:
        parts.append(f"step_{int(step):07d}")
    if tag:
        parts.append(str(tag))
    if not parts:
        raise ValueError("picture_path needs an epoch, a step or a tag")
    return Path(dirpath) / ("_".join(parts) + ".png")


def frames(
    dirpath: str | Path, by: str = "epoch", pattern: str = "*.png"
) -> list[tuple[int, Path]]:
    """``(number, path)`` of the pictures in ``dirpath`` named by :func:`picture_path`, ordered
    by their epoch or step number (not by name: ``epoch_1000`` sorts before ``epoch_999``)."""
    found = []
    for path in Path(dirpath).glob(pattern):
        match = _PART[by].search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


class Skip(Exception):
    """Raised by :meth:`PictureCallback.pictures`: nothing to draw for this model or data."""


def image_grid(images: torch.Tensor, pixel_range: Any, nrow: int, padding: int) -> torch.Tensor:
    """A batch of images in ``pixel_range`` as one (3, H, W) grid in [0, 1]; :class:`Skip`
    for samples that are not images (the 1-D toy's points)."""
    if images.dim() != 4:
        raise Skip(f"the model's samples are not images: shape {tuple(images.shape)}")
    return make_grid(to_unit(images, pixel_range).cpu(), nrow=nrow, padding=padding)


@dataclass
class Picture:
    """One image of a drawing: its logger key, pixels and optional file-name tag."""

    key: str  #: the logger key, e.g. ``samples/fixed_noise``
    image: torch.Tensor  #: (3, H, W) or (1, H, W) float in [0, 1]
    tag: str | None = None  #: file-name suffix, when one drawing makes several pictures
    caption: str | None = None  #: default: the epoch or step it shows


class PictureCallback(pl.Callback):
    """Base of every picture callback: the gate, rank zero, naming, logging, skip-once.

    Args:
        dirpath: where the PNG files go.
        every_n_epochs: draw at the end of every n-th epoch (0: not per epoch).
        every_n_steps: draw every n real batches, and at step 0 (0: not per step).
        at_train_end: draw once more when training ends, unless the last drawing already
            shows the final weights.

    Subclasses set :attr:`config_key` (their entry under ``callbacks.`` in error messages),
    :attr:`name_parts` (which of epoch/step their file names carry) and define
    :meth:`pictures`.
    """

    config_key = "pictures"
    name_parts: tuple[str, ...] = ("epoch", "step")

    def __init__(
        self,
        dirpath: str | Path,
        every_n_epochs: int = 1,
        every_n_steps: int = 0,
        at_train_end: bool = True,
    ) -> None:
        if int(every_n_epochs) < 0 or int(every_n_steps) < 0:
            raise ConfigError(
                f"callbacks.{self.config_key}: every_n_epochs and every_n_steps must be >= 0 "
                f"(0: off); got {every_n_epochs}, {every_n_steps}."
            )
        if not (int(every_n_epochs) or int(every_n_steps) or at_train_end):
            raise ConfigError(
                f"callbacks.{self.config_key}: every_n_epochs=0, every_n_steps=0 and "
                f"at_train_end=false draw nothing; disable it with callbacks.{self.config_key}=null."
            )
        self.dirpath = Path(dirpath)
        self.every_n_epochs = int(every_n_epochs)
        self.every_n_steps = int(every_n_steps)
        self.at_train_end = bool(at_train_end)
        self._skip_reported = False
        self._last_drawn_step: int | None = None
        self._last_epoch: int | None = None

    # ------------------------------------------------------------------ subclass API
    def pictures(self, trainer: pl.Trainer, module: Any) -> list[Picture]:  # pragma: no cover
        """What to draw now; raise :class:`Skip` when the model or data does not fit."""
        raise NotImplementedError(
            f"{type(self).__name__} must define pictures() (see PictureCallback)"
        )

    # ------------------------------------------------------------------ drawing
    def draw(self, trainer: pl.Trainer, module: Any, epoch: int | None = None) -> None:
        """Draw, name, save and log this callback's pictures for the current weights."""
        step = int(module.batches_seen)
        epoch = self._epoch(trainer) if epoch is None else epoch
        try:
            # pictures() may read files back (the GIF's frames): a fault there is not
            # essential either.
            pictures = PICTURES.attempt(None, lambda: self.pictures(trainer, module)) or []
        except Skip as reason:
            if not self._skip_reported:
                log.info("%s: skipping (%s)", type(self).__name__, reason)
                self._skip_reported = True
            return
        where = {"epoch": epoch, "step": step}
        names = {part: where[part] for part in self.name_parts}
        default_caption = " ".join(f"{part} {value}" for part, value in names.items())
        for picture in pictures:
            path = picture_path(self.dirpath, tag=picture.tag, **names)
            saved = log_image(
                trainer,
                picture.key,
                picture.image,
                path,
                caption=picture.caption or default_caption,
            )
            if saved is not None:
                log.info("Saved %s", path)
        self._last_drawn_step = step

    def _epoch(self, trainer: pl.Trainer) -> int:
        return self._last_epoch if self._last_epoch is not None else int(trainer.current_epoch)

    # ------------------------------------------------------------------ the gate
    @rank_zero_only
    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.every_n_steps and pl_module.batches_seen % self.every_n_steps == 0:
            self.draw(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        # Called after every batch: one integer test, rank zero asked only when a drawing is due.
        if self.every_n_steps and pl_module.batches_seen % self.every_n_steps == 0:
            if trainer.is_global_zero:
                self.draw(trainer, pl_module)

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._last_epoch = int(trainer.current_epoch)
        if self.every_n_epochs and (self._last_epoch + 1) % self.every_n_epochs == 0:
            self.draw(trainer, pl_module, self._last_epoch)

    @rank_zero_only
    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.at_train_end and self._last_drawn_step != pl_module.batches_seen:
            self.draw(trainer, pl_module)
