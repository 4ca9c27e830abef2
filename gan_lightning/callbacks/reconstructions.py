"""Fixed validation images next to their reconstructions (seed 002, Fig. 14: a 5x5 pair)."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torchvision.utils import make_grid

from gan_lightning.callbacks.base import Picture, PictureCallback, Skip
from gan_lightning.errors import ConfigError
from gan_lightning.utils.batches import images_of
from gan_lightning.utils.pixels import to_unit


class ReconstructionGrid(PictureCallback):
    """Originals (left grid) next to their reconstructions (right grid), every epoch.

    The originals are the first ``num_images`` images of the first validation batch (the
    validation loader is not shuffled), captured once and kept in the callback's state, so
    every epoch of a run, resumed or not, shows the same digits. Works with any module that
    has ``reconstruct(x)`` (the VAE); other models (GANs) are skipped, so it can sit in the
    default callback list.
    """

    config_key = "reconstructions"

    def __init__(
        self,
        dirpath: str = "reconstructions",
        num_images: int = 25,
        nrow: int | None = None,
        padding: int = 2,
        every_n_epochs: int = 1,
        at_train_end: bool = True,
    ) -> None:
        super().__init__(dirpath, every_n_epochs=every_n_epochs, at_train_end=at_train_end)
        if int(num_images) < 1:
            raise ConfigError(
                f"callbacks.reconstructions.num_images must be >= 1; got {num_images}."
            )
        self.num_images = int(num_images)
        self.nrow = int(nrow) if nrow else int(math.ceil(math.sqrt(num_images)))
        self.padding = int(padding)
        self.images: torch.Tensor | None = None  # originals, in the data's pixel range, on CPU

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.images is None and batch_idx == 0 and dataloader_idx == 0:
            self.images = images_of(batch)[: self.num_images].detach().cpu()

    def _originals(self, trainer: pl.Trainer) -> torch.Tensor:
        """The captured validation images, or the DataModule's first ones when no validation
        ran (e.g. ``limit_val_batches=0``)."""
        if self.images is None:
            datamodule = getattr(trainer, "datamodule", None)
            if datamodule is None:
                raise Skip("no validation images available")
            batch = datamodule.on_after_batch_transfer(next(iter(datamodule.val_dataloader())), 0)
            self.images = images_of(batch)[: self.num_images].detach().cpu()
        return self.images

    def render(self, module: Any, images: torch.Tensor) -> torch.Tensor:
        """Originals and reconstructions side by side as one float (3, H, W) grid in [0, 1]."""
        recon = module.reconstruct(images).cpu()
        left, right = (
            make_grid(to_unit(t, module.pixel_range), nrow=self.nrow, padding=self.padding)
            for t in (images, recon)
        )
        gap = torch.ones(left.shape[0], left.shape[1], 4 * self.padding + 2)  # white column
        return torch.cat([left, gap, right], dim=2)

    def pictures(self, trainer: pl.Trainer, module: Any) -> list[Picture]:
        if not callable(getattr(module, "reconstruct", None)):
            raise Skip(f"{type(module).__name__} has no reconstruct()")
        epoch = self._epoch(trainer)
        image = self.render(module, self._originals(trainer))
        return [Picture("reconstructions", image, caption=f"epoch {epoch}: data | recon")]

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.images = state_dict.get("images")
