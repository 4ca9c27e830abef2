"""A fixed-noise sample grid per epoch, as every seed report shows one."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid

from gan_lightning.errors import ConfigError
from gan_lightning.utils.images import log_image
from gan_lightning.utils.pixels import to_unit

log = logging.getLogger(__name__)


class SampleGrid(pl.Callback):
    """Save ``num_samples`` images from the *same* latent vectors at the end of every epoch.

    The latents are drawn once from the model's prior with ``seed`` and kept in the callback's
    state (saved in checkpoints), so grids of a resumed run stay comparable epoch to epoch.
    Runs on global rank 0 only: every rank holds the same weights.
    """

    def __init__(
        self,
        dirpath: str = "samples",
        num_samples: int = 64,
        nrow: int | None = None,
        padding: int = 2,
        every_n_epochs: int = 1,
        seed: int = 1234,
    ) -> None:
        if num_samples < 1 or every_n_epochs < 1:
            raise ConfigError("callbacks.sample_grid: num_samples and every_n_epochs must be >= 1")
        self.dirpath = Path(dirpath)
        self.num_samples = int(num_samples)
        self.nrow = int(nrow) if nrow else int(math.ceil(math.sqrt(num_samples)))
        self.padding = int(padding)
        self.every_n_epochs = int(every_n_epochs)
        self.seed = int(seed)
        self.fixed_z: torch.Tensor | None = None
        self.saved: list[Path] = []

    def _latents(self, module: Any) -> torch.Tensor:
        if self.fixed_z is None or self.fixed_z.shape[1] != module.latent_dim:
            generator = torch.Generator().manual_seed(self.seed)
            self.fixed_z = module.sample_latent(self.num_samples, generator, device="cpu")
        return self.fixed_z

    def render(self, module: Any) -> torch.Tensor:
        """The grid as a float (3, H, W) tensor in [0, 1]."""
        images = module.generate(self._latents(module))
        if images.dim() != 4:
            raise ConfigError(
                f"SampleGrid needs image batches (N, C, H, W); got {tuple(images.shape)}"
            )
        return make_grid(
            to_unit(images, module.pixel_range).cpu(), nrow=self.nrow, padding=self.padding
        )

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs != 0 or trainer.sanity_checking:
            return
        try:
            grid = self.render(pl_module)
        except ConfigError as err:  # e.g. the 1-D toy: nothing to tile, say so once
            if not getattr(self, "_skipped", False):
                log.info("SampleGrid: skipping (%s)", err)
                self._skipped = True
            return
        path = epoch_image_path(self.dirpath, epoch, pl_module)
        log_image(trainer, "samples/fixed_noise", grid, path, caption=f"epoch {epoch}")
        self.saved.append(path)
        log.info("Saved sample grid %s", path)

    def state_dict(self) -> dict[str, Any]:
        return {"fixed_z": self.fixed_z}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fixed_z = state_dict.get("fixed_z")


def epoch_image_path(dirpath: Path, epoch: int, module: Any) -> Path:
    """The one naming scheme of per-epoch pictures (``SampleGif`` globs these names):
    ``epoch_004_step_0004295.png``, with the step in real batches."""
    return Path(dirpath) / f"epoch_{epoch:03d}_step_{pl_module_batches(module):07d}.png"


def pl_module_batches(module: Any) -> int:
    """Real batches seen (the project's step unit), falling back to Lightning's global step."""
    return int(getattr(module, "batches_seen", module.global_step))
