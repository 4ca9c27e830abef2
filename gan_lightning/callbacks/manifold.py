"""The learned 2-D manifold: decode a regular grid of latents (seed 002, "grid in latent", Fig. 9;
Kingma & Welling, Fig. 4).

For a 2-D latent space the grid covers the prior's mass evenly: coordinate ``i`` of ``n`` is
the prior's quantile ``(i + 0.5) / n`` (0.05, 0.15, ..., 0.95 for n = 10), mapped through the
inverse CDF of N(0, 1) for a normal prior and linearly for a uniform one. z1 grows left to
right, z2 bottom to top, like a plot. It needs only the GenerativeModule contract
(``latent_dim``, ``prior``, ``generate``), so it draws GAN and VAE manifolds alike.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from gan_lightning.callbacks.base import Picture, PictureCallback, Skip, image_grid
from gan_lightning.errors import ConfigError


def prior_grid_axis(prior: Any, n: int) -> torch.Tensor | None:
    """``n`` coordinates at the prior's quantiles ``(i + 0.5) / n``; None for unknown priors."""
    quantiles = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    name = getattr(prior, "name", None)
    if name == "normal":
        return torch.distributions.Normal(0.0, 1.0).icdf(quantiles).float()
    if name == "uniform":
        return (prior.low + quantiles * (prior.high - prior.low)).float()
    return None


def latent_grid(prior: Any, n: int) -> torch.Tensor | None:
    """(n * n, 2) latents in row-major display order: rows from high z2 to low z2."""
    axis = prior_grid_axis(prior, n)
    if axis is None:
        return None
    z2, z1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # (n, n) each
    return torch.stack([z1, z2], dim=-1).reshape(n * n, 2)


class LatentManifold(PictureCallback):
    """A ``grid_size`` x ``grid_size`` grid of decoded latents for 2-D latent models; other
    latent sizes (or a prior without known quantiles) are skipped."""

    config_key = "latent_manifold"

    def __init__(
        self,
        dirpath: str = "latent_manifold",
        grid_size: int = 10,
        padding: int = 0,
        every_n_epochs: int = 1,
        at_train_end: bool = True,
    ) -> None:
        super().__init__(dirpath, every_n_epochs=every_n_epochs, at_train_end=at_train_end)
        if int(grid_size) < 2:
            raise ConfigError(f"callbacks.latent_manifold.grid_size must be >= 2; got {grid_size}.")
        self.grid_size = int(grid_size)
        self.padding = int(padding)

    def latents(self, module: Any) -> torch.Tensor:
        if int(getattr(module, "num_classes", 0)):
            raise Skip("a class-conditional model has no single 2-D manifold")
        if int(getattr(module, "latent_dim", -1)) != 2:
            raise Skip(f"latent_dim={getattr(module, 'latent_dim', None)} (needs 2)")
        z = latent_grid(getattr(module, "prior", None), self.grid_size)
        if z is None:
            raise Skip(f"prior {getattr(module, 'prior', None)!r} has no known quantiles")
        return z

    def render(self, module: Any) -> torch.Tensor:
        """The grid as a float (3, H, W) tensor in [0, 1]."""
        images = module.generate(self.latents(module))
        return image_grid(images, module.pixel_range, self.grid_size, self.padding)

    def pictures(self, trainer: pl.Trainer, module: Any) -> list[Picture]:
        return [Picture("latent_manifold", self.render(module))]
