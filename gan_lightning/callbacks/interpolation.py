"""Latent interpolations: does the generator map nearby latents to nearby images?

Seed 004's Figure 2 shows samples along the line between two random latents of a spherical
normal prior. Each row here walks from one fixed latent to another in ``num_steps`` images
(both ends included); a smooth morph says G learned a continuous map, abrupt switches or
repeated digits point at memorisation or mode collapse. For a normal prior a second picture
uses spherical interpolation, which stays on the shell where the prior's mass lies (see
:mod:`gan_lightning.utils.latents`); for a uniform prior only linear paths are drawn.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from gan_lightning.callbacks.base import Picture, PictureCallback, image_grid
from gan_lightning.contracts import conditions_of
from gan_lightning.errors import ConfigError
from gan_lightning.utils.latents import check_method, default_methods, interpolate


def interpolation_grid(
    module: Any,
    z0: torch.Tensor,
    z1: torch.Tensor,
    num_steps: int,
    method: str,
    padding: int = 2,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """One row per pair (z0[i] -> z1[i]), ``num_steps`` columns: a (3, H, W) float in [0, 1].

    A conditional model keeps one class along each row (``labels[i]``; default: row i is
    class i mod num_classes), so only the latent moves."""
    path = interpolate(z0, z1, num_steps, method)  # (P, T, D)
    if labels is None:
        labels = module.default_labels(z0.shape[0]) if conditions_of(module) else None
    if labels is not None:
        labels = labels.to(path.device).repeat_interleave(num_steps)  # (P*T,)
    images = module.generate(path.reshape(-1, path.shape[-1]), labels)  # (P*T, C, H, W)
    return image_grid(images, module.pixel_range, num_steps, padding)


class LatentInterpolation(PictureCallback):
    """Rows of interpolations between ``num_pairs`` fixed latent pairs.

    Args:
        dirpath: where ``epoch_<NNN>_<method>.png`` go.
        num_pairs / num_steps: rows / images per row (both ends included).
        methods: ``[linear, spherical]``, or ``None`` for linear plus spherical when the
            prior is normal.
        every_n_epochs: also draw every n epochs (0: only when training ends).
        seed: the fixed latent pairs (kept in the callback state, so a resumed run draws the
            same pairs).
    """

    config_key = "interpolation"
    name_parts = ("epoch",)

    def __init__(
        self,
        dirpath: str = "interpolations",
        num_pairs: int = 8,
        num_steps: int = 10,
        methods: list[str] | None = None,
        every_n_epochs: int = 0,
        at_train_end: bool = True,
        padding: int = 2,
        seed: int = 4321,
    ) -> None:
        super().__init__(dirpath, every_n_epochs=every_n_epochs, at_train_end=at_train_end)
        if int(num_pairs) < 1 or int(num_steps) < 2:
            raise ConfigError(
                "callbacks.interpolation: num_pairs >= 1 and num_steps >= 2 (both ends) "
                f"required; got {num_pairs}, {num_steps}."
            )
        self.num_pairs = int(num_pairs)
        self.num_steps = int(num_steps)
        self.methods = list(methods) if methods else None
        self.padding = int(padding)
        self.seed = int(seed)
        self.pairs: torch.Tensor | None = None  # (2, num_pairs, latent_dim)

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

    def pictures(self, trainer: pl.Trainer, module: Any) -> list[Picture]:
        return [
            Picture(f"interpolation/{method}", grid, tag=method)
            for method, grid in self.render(module).items()
        ]

    def state_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pairs = state_dict.get("pairs")
