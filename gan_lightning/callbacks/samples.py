"""A fixed-noise sample grid per epoch, as every seed report shows one."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch

from gan_lightning.callbacks.base import Picture, PictureCallback, image_grid
from gan_lightning.contracts import conditions_of
from gan_lightning.errors import ConfigError


class SampleGrid(PictureCallback):
    """``num_samples`` images from the *same* latent vectors, every ``every_n_epochs`` epochs.

    The latents are drawn once from the model's prior with ``seed`` and kept in the callback's
    state (saved in checkpoints), so grids of a resumed run stay comparable epoch to epoch.
    A class-conditional model gets one row per class (a self-conditioned GAN one per cluster), the same latents down each column
    (``num_samples // num_classes`` columns), so a row shows a class and a column a style.
    """

    config_key = "sample_grid"

    def __init__(
        self,
        dirpath: str = "samples",
        num_samples: int = 64,
        nrow: int | None = None,
        padding: int = 2,
        every_n_epochs: int = 1,
        at_train_end: bool = True,
        seed: int = 1234,
    ) -> None:
        super().__init__(dirpath, every_n_epochs=every_n_epochs, at_train_end=at_train_end)
        if int(num_samples) < 1:
            raise ConfigError(f"callbacks.sample_grid.num_samples must be >= 1; got {num_samples}.")
        self.num_samples = int(num_samples)
        self.nrow = int(nrow) if nrow else int(math.ceil(math.sqrt(num_samples)))
        self.padding = int(padding)
        self.seed = int(seed)
        self.fixed_z: torch.Tensor | None = None

    def _latents(self, module: Any) -> torch.Tensor:
        if self.fixed_z is None or self.fixed_z.shape[1] != module.latent_dim:
            generator = torch.Generator().manual_seed(self.seed)
            self.fixed_z = module.sample_latent(self.num_samples, generator, device="cpu")
        return self.fixed_z

    def render(self, module: Any) -> torch.Tensor:
        """The grid as a float (3, H, W) tensor in [0, 1]."""
        z = self._latents(module)
        classes = conditions_of(module)  # classes, or a self-conditioned GAN's clusters
        if not classes:
            return image_grid(module.generate(z), module.pixel_range, self.nrow, self.padding)
        per_class = max(1, self.num_samples // classes)
        labels = torch.arange(classes).repeat_interleave(per_class)  # row r: class r
        images = module.generate(z[:per_class].repeat(classes, 1), labels)
        return image_grid(images, module.pixel_range, per_class, self.padding)

    def pictures(self, trainer: pl.Trainer, module: Any) -> list[Picture]:
        return [Picture("samples/fixed_noise", self.render(module))]

    def state_dict(self) -> dict[str, Any]:
        return {"fixed_z": self.fixed_z}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fixed_z = state_dict.get("fixed_z")
