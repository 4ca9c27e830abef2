"""Latent priors p(z) as small objects, so a config can swap N(0, I) for U(low, high)."""

from __future__ import annotations

import torch

from gan_lightning.errors import ConfigError


class NormalPrior:
    """Spherical normal N(0, I), the default of DCGAN and seed 004."""

    name = "normal"

    def sample(
        self,
        shape: tuple[int, ...],
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return torch.randn(shape, device=device, generator=generator)

    def __repr__(self) -> str:
        return "NormalPrior()"


class UniformPrior:
    """Uniform U(low, high) per coordinate: the original GAN paper and seed 001 (U(-8, 8))."""

    name = "uniform"

    def __init__(self, low: float = -1.0, high: float = 1.0) -> None:
        if not high > low:
            raise ConfigError(
                f"model.prior: uniform prior needs high > low; got low={low}, high={high}."
            )
        self.low = float(low)
        self.high = float(high)

    def sample(
        self,
        shape: tuple[int, ...],
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        u = torch.rand(shape, device=device, generator=generator)
        return u * (self.high - self.low) + self.low

    def __repr__(self) -> str:
        return f"UniformPrior(low={self.low}, high={self.high})"
