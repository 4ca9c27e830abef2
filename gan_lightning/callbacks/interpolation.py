"""Latent interpolations: does the generator map nearby latents to nearby images?

Seed 004's Figure 2 shows samples along the line between two random latents of a spherical
normal prior. Each row here walks from one fixed latent to another in ``num_steps`` images
(both ends included); a smooth morph says G learned a continuous map, abrupt switches or
repeated digits point at memorisation or mode collapse. For a normal prior a second picture
uses spherical interpolation, which stays on the shell where the prior's mass lies (see
:mod:`gan_lightning.utils.latents`); for a uniform prior only linear paths are drawn.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid

from gan_lightning.errors import ConfigError
from gan_lightning.utils.images import log_image
from gan_lightning.utils.latents import check_method, default_methods, interpolate
from gan_lightning.utils.pixels import to_unit

log = logging.getLogger(__name__)


def interpolation_grid(
    module: Any,
    z0: torch.Tensor,
    z1: torch.Tensor,
    num_steps: int,
    method: str,
    padding: int = 2,
) -> torch.Tensor:
    """One row per pair (z0[i] -> z1[i]), ``num_steps`` columns: a (3, H, W) float in [0, 1]."""
    path = interpolate(z0, z1, num_steps, method)  # (P, T, D)
    images = module.generate(path.reshape(-1, path.shape[-1]))  # (P*T, C, H, W)
    if images.dim() != 4:
        raise ConfigError(
            f"interpolation needs image batches (N, C, H, W); got {tuple(images.shape)}"
        )
    return make_grid(to_unit(images, module.pixel_range).cpu(), nrow=num_steps, padding=padding)


class LatentInterpolation(pl.Callback):
    """Rows of interpolations between ``num_pairs`` fixed latent pairs.

    Args:
        dirpath: where ``epoch_XXX_<method>.png`` go.
        num_pairs / num_steps: rows / images per row (both ends included).
        methods: ``[linear, spherical]``, or ``None`` for linear plus spherical when the
            prior is normal.
        every_n_epochs: also draw every n epochs (0: only when training ends).
        seed: the fixed latent pairs (kept in the callback state, so a resumed run draws the
            same pairs).
    """

    def __init__(
        self,
        dirpath: str = "interpolations",
        num_pairs: int = 8,
        num_steps: int = 10,
        methods: list[str] | None = None,
        every_n_epochs: int = 0,
        padding: int = 2,
        seed: int = 4321,
    ) -> None:
        if num_pairs < 1 or num_steps < 2 or every_n_epochs < 0:
            raise ConfigError(
                "callbacks.interpolation: num_pairs >= 1, num_steps >= 2 (both ends) and "
                f"every_n_epochs >= 0 required; got {num_pairs}, {num_steps}, {every_n_epochs}."
            )
        self.dirpath = Path(dirpath)
        self.num_pairs = int(num_pairs)
        self.num_steps = int(num_steps)
        self.methods = list(methods) if methods else None
        self.every_n_epochs = int(every_n_epochs)
        self.padding = int(padding)
        self.seed = int(seed)
        self.pairs: torch.Tensor | None = None  # (2, num_pairs, latent_dim)
        self._last_epoch: int | None = None
        self._drawn: set[int] = set()
        self.saved: list[Path] = []

    def setup(self, trainer: pl.Trainer, pl_module: Any, stage: str) -> None:
        for method in self.methods or []:
            check_method(method, pl_module.prior)  # a bad choice fails before training

    def _pairs(self, module: Any) -> torch.Tensor:
        if self.pairs is None or self.pairs.shape[-1] != module.latent_dim:
            generator = torch.Generator().manual_seed(self.seed)
            z = module.sample_latent(2 * self.num_pairs, generator, device="cpu")
            self.pairs = z.view(2, self.num_pairs, -1)
        return self.pairs

    def render(self, module: Any) -> dict[str, torch.Tensor]:
        """``{method: (3, H, W) grid}`` for every method that applies to this model."""
        z0, z1 = self._pairs(module)
        methods = self.methods or list(default_methods(module.prior))
        return {
            m: interpolation_grid(module, z0, z1, self.num_steps, m, self.padding) for m in methods
        }

    def _draw(self, trainer: pl.Trainer, module: Any, epoch: int) -> None:
        if module.generate(self._pairs(module)[0, :1]).dim() != 4:
            if epoch not in self._drawn:
                log.info("LatentInterpolation: the model's samples are not images; skipping.")
            self._drawn.add(epoch)
            return
        for method, grid in self.render(module).items():
            path = self.dirpath / f"epoch_{epoch:03d}_{method}.png"
            log_image(trainer, f"interpolation/{method}", grid, path, caption=f"epoch {epoch}")
            self.saved.append(path)
        self._drawn.add(epoch)
        log.info("Saved latent interpolations for epoch %d in %s", epoch, self.dirpath)

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        self._last_epoch = trainer.current_epoch
        if self.every_n_epochs and (self._last_epoch + 1) % self.every_n_epochs == 0:
            self._draw(trainer, pl_module, self._last_epoch)

    @rank_zero_only
    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        epoch = self._last_epoch if self._last_epoch is not None else trainer.current_epoch
        if epoch not in self._drawn:
            self._draw(trainer, pl_module, epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pairs = state_dict.get("pairs")
