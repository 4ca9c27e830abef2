"""The learned 2-D manifold: decode a regular grid of latents (seed 002, "grid in latent", Fig. 9;
Kingma & Welling, Fig. 4).

For a 2-D latent space the grid covers the prior's mass evenly: coordinate ``i`` of ``n`` is
the prior's quantile ``(i + 0.5) / n`` (0.05, 0.15, ..., 0.95 for n = 10), mapped through the
inverse CDF of N(0, 1) for a normal prior and linearly for a uniform one. z1 grows left to
right, z2 bottom to top, like a plot. It needs only the GenerativeModule contract
(``latent_dim``, ``prior``, ``generate``), so it draws GAN and VAE manifolds alike.
"""

from __future__ import annotations

import logging
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


class LatentManifold(pl.Callback):
    """Save a ``grid_size`` x ``grid_size`` grid of decoded latents for 2-D latent models.

    Models with ``latent_dim != 2`` (or a prior without known quantiles) are skipped with one
    info line, so the callback can sit in the default callback list.
    """

    def __init__(
        self,
        dirpath: str = "latent_manifold",
        grid_size: int = 10,
        padding: int = 0,
        every_n_epochs: int = 1,
    ) -> None:
        if grid_size < 2 or every_n_epochs < 1:
            raise ConfigError(
                "callbacks.latent_manifold: grid_size must be >= 2 and every_n_epochs >= 1"
            )
        self.dirpath = Path(dirpath)
        self.grid_size = int(grid_size)
        self.padding = int(padding)
        self.every_n_epochs = int(every_n_epochs)
        self.saved: list[Path] = []
        self._skip_logged = False

    def _skip(self, reason: str) -> None:
        if not self._skip_logged:
            log.info("LatentManifold: %s; skipping.", reason)
            self._skip_logged = True

    def latents(self, module: Any) -> torch.Tensor | None:
        if int(getattr(module, "latent_dim", -1)) != 2:
            self._skip(f"latent_dim={getattr(module, 'latent_dim', None)} (needs 2)")
            return None
        z = latent_grid(getattr(module, "prior", None), self.grid_size)
        if z is None:
            self._skip(f"prior {getattr(module, 'prior', None)!r} has no known quantiles")
        return z

    def render(self, module: Any, z: torch.Tensor) -> torch.Tensor:
        """The grid as a float (3, H, W) tensor in [0, 1]."""
        images = to_unit(module.generate(z), module.pixel_range).cpu()
        if images.dim() != 4:
            raise ConfigError(
                f"LatentManifold needs image batches (N, C, H, W); got {tuple(images.shape)}"
            )
        return make_grid(images, nrow=self.grid_size, padding=self.padding)

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs != 0:
            return
        z = self.latents(pl_module)
        if z is None:
            return
        grid = self.render(pl_module, z)
        path = epoch_image_path(self.dirpath, epoch, pl_module)
        log_image(trainer, "latent_manifold", grid, path, caption=f"epoch {epoch}")
        self.saved.append(path)
        log.info("Saved latent manifold %s", path)
