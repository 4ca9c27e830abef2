"""Fixed validation images next to their reconstructions (seed 002, Fig. 14: a 5x5 pair)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid

from gan_lightning.callbacks.samples import epoch_image_path
from gan_lightning.errors import ConfigError
from gan_lightning.utils.images import log_image
from gan_lightning.utils.pixels import to_unit

log = logging.getLogger(__name__)


def _images_of(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


class ReconstructionGrid(pl.Callback):
    """Save originals (left grid) next to their reconstructions (right grid) every epoch.

    The originals are the first ``num_images`` images of the first validation batch (the
    validation loader is not shuffled), captured once and kept in the callback's state, so
    every epoch of a run, resumed or not, shows the same digits. Works with any module that
    has ``reconstruct(x)`` (the VAE); for other models (GANs) it logs one info line and does
    nothing, so it can sit in the default callback list.
    """

    def __init__(
        self,
        dirpath: str = "reconstructions",
        num_images: int = 25,
        nrow: int | None = None,
        padding: int = 2,
        every_n_epochs: int = 1,
    ) -> None:
        if num_images < 1 or every_n_epochs < 1:
            raise ConfigError(
                "callbacks.reconstructions: num_images and every_n_epochs must be >= 1"
            )
        self.dirpath = Path(dirpath)
        self.num_images = int(num_images)
        self.nrow = int(nrow) if nrow else int(math.ceil(math.sqrt(num_images)))
        self.padding = int(padding)
        self.every_n_epochs = int(every_n_epochs)
        self.images: torch.Tensor | None = None  # originals, in the data's pixel range, on CPU
        self.saved: list[Path] = []
        self._skip_logged = False

    def applies_to(self, module: Any) -> bool:
        if callable(getattr(module, "reconstruct", None)):
            return True
        if not self._skip_logged:
            log.info(
                "ReconstructionGrid: %s has no reconstruct(); skipping.", type(module).__name__
            )
            self._skip_logged = True
        return False

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
            self.images = _images_of(batch)[: self.num_images].detach().cpu()

    def _fallback_images(self, trainer: pl.Trainer) -> torch.Tensor | None:
        """First validation images straight from the DataModule, when no validation ran."""
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None:
            return None
        batch = next(iter(datamodule.val_dataloader()))
        batch = datamodule.on_after_batch_transfer(batch, 0)
        return _images_of(batch)[: self.num_images].detach().cpu()

    def render(self, module: Any, images: torch.Tensor) -> torch.Tensor:
        """Originals and reconstructions side by side as one float (3, H, W) grid in [0, 1]."""
        recon = module.reconstruct(images).cpu()
        left, right = (
            make_grid(to_unit(t, module.pixel_range), nrow=self.nrow, padding=self.padding)
            for t in (images, recon)
        )
        gap = torch.ones(left.shape[0], left.shape[1], 4 * self.padding + 2)  # white column
        return torch.cat([left, gap, right], dim=2)

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs != 0 or not self.applies_to(pl_module):
            return
        if self.images is None:
            self.images = self._fallback_images(trainer)
            if self.images is None:
                log.info("ReconstructionGrid: no validation images available; skipping.")
                return
        grid = self.render(pl_module, self.images)
        path = epoch_image_path(self.dirpath, epoch, pl_module)
        log_image(trainer, "reconstructions", grid, path, caption=f"epoch {epoch}: data | recon")
        self.saved.append(path)
        log.info("Saved reconstruction grid %s", path)

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.images = state_dict.get("images")
