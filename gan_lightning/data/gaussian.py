"""The 1-D Gaussian toy of the GAN paper's Figure 1 (seed 001, section 3.1).

Samples x ~ N(mu, sigma) as float tensors of shape (N, 1): ``image_shape`` is ``[1]``, so the
MLP generator/discriminator work on scalars, and the base's uint8 -> pixel-range conversion
leaves the floats untouched (``pixel_range`` is unused here; it only has to be a valid range
for the model's output-activation check, which a linear output always passes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from gan_lightning.data.base import BaseDataModule
from gan_lightning.data.tensors import TensorImageDataset
from gan_lightning.errors import ConfigError


class GaussianSamples(Dataset):
    """``num_samples`` *fresh* draws per epoch: Algorithm 1 samples a new minibatch from p_data
    at every step, so an index is only a slot, never a fixed sample.

    Draws come from a private, seeded generator (reproducible, independent of the model's
    noise). Use it with ``num_workers=0``: worker processes would each copy the generator and
    draw the same numbers.
    """

    def __init__(self, num_samples: int, mu: float, sigma: float, seed: int = 0) -> None:
        self.num_samples = int(num_samples)
        self.mu = float(mu)
        self.sigma = float(sigma)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return self.num_samples

    def draw(self, n: int) -> torch.Tensor:
        return torch.randn(n, 1, generator=self.generator) * self.sigma + self.mu  # (n, 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.draw(1)[0], torch.zeros((), dtype=torch.long)

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.draw(len(indices)), torch.zeros(len(indices), dtype=torch.long)


class GaussianDataModule(BaseDataModule):
    """x ~ N(mu, sigma) in 1-D: ``num_samples`` fresh draws per training epoch, and a fixed,
    seeded set of ``val_size`` draws for validation and test (comparable epoch to epoch)."""

    def __init__(
        self,
        mu: float = 3.0,
        sigma: float = 0.5,
        num_samples: int = 60000,
        val_size: int = 1000,
        **kwargs,
    ) -> None:
        super().__init__(val_size=val_size, **kwargs)
        if not float(sigma) > 0:
            raise ConfigError(f"data.sigma must be > 0; got {sigma}.")
        if int(num_samples) < 1:
            raise ConfigError(f"data.num_samples must be >= 1; got {num_samples}.")
        if self.num_val(int(num_samples)) < 1:
            raise ConfigError(f"data.val_size must be >= 1 for the toy; got {val_size}.")
        self.mu = float(mu)
        self.sigma = float(sigma)
        self.num_samples = int(num_samples)

    @property
    def image_shape(self) -> tuple[int]:
        return (1,)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """p_data(x), the green curve of Figure 1."""
        z = (x - self.mu) / self.sigma
        return torch.exp(-0.5 * z**2) / (self.sigma * math.sqrt(2 * math.pi))

    def prepare_data(self) -> None:
        pass  # nothing on disk

    def build_splits(self):
        rank = int(getattr(self.trainer, "global_rank", 0) or 0) if self.trainer else 0
        # Each DDP rank draws its own stream (the same seed on every rank would duplicate data).
        train = GaussianSamples(self.num_samples, self.mu, self.sigma, seed=self.seed + 1 + rank)
        fixed = GaussianSamples(1, self.mu, self.sigma, seed=self.seed).draw(
            self.num_val(self.num_samples)
        )
        val = TensorImageDataset(fixed, torch.zeros(fixed.shape[0], dtype=torch.long))
        return train, val, val
