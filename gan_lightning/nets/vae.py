"""VAE encoders and decoders on one abstraction.

* An **encoder** maps images (N, C, H, W) to the parameters of a diagonal Gaussian posterior
  q(z|x): ``(mu, logvar)``, each (N, latent_dim). Every encoder is a feature extractor
  (``features``: images -> (N, F)) followed by the same two linear heads, so the MLP and the
  convolutional encoder differ only in ``features``.
* A **decoder** maps z (N, latent_dim) to *pre-sigmoid* pixel values (N, C, H, W). The sigmoid
  of seed 002's decoder lives in the VAE module instead (BCE-with-logits for the Bernoulli
  likelihood, a squashed mean for the Gaussian one), for the same numerical reason the GAN
  discriminators return logits.

Seed 002's MLP VAE (Fig. 12) is ``MLPEncoder(hidden_sizes=[512, 256], latent_dim=2)`` +
``MLPDecoder(hidden_sizes=[256, 512])``: fc1 784-512, fc2 512-256, fc31/fc32 256-2,
fc4 2-256, fc5 256-512, fc6 512-784. The convolutional pair reuses the DCGAN stacks and their
size rules (28, or 4 * 2^k), so ``model=conv_vae data=celeba`` builds a 64x64x3 VAE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.nets import layers
from gan_lightning.nets.dcgan import (
    DCGANGenerator,
    apply_init,
    conv_levels,
    down_stack,
    level_widths,
)
from gan_lightning.nets.mlp import MLPGenerator


class GaussianEncoder(nn.Module):
    """images (N, *image_shape) -> (mu, logvar), each (N, latent_dim).

    Subclasses build ``self.features`` (images -> (N, feature_dim)) and call
    :meth:`_build_heads`; the heads are two separate linear layers, as in seed 002 (fc31/fc32).
    """

    config_key = "encoder"
    latent_dim: int
    image_shape: tuple[int, ...]
    features: nn.Module

    def _build_heads(self, feature_dim: int) -> None:
        if self.latent_dim < 1:
            raise ConfigError(f"model.latent_dim must be >= 1; got {self.latent_dim}.")
        self.mu = nn.Linear(feature_dim, self.latent_dim)
        self.logvar = nn.Linear(feature_dim, self.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)  # (N, F)
        return self.mu(h), self.logvar(h)  # (N, latent_dim) each


class MLPEncoder(GaussianEncoder):
    """Fully connected encoder: flatten -> hidden layers -> (mu, logvar)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        hidden_sizes: Sequence[int] = (512, 256),
        activation: str = "relu",
        negative_slope: float = 0.2,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers.check_mlp_options(hidden_sizes, dropout, self.config_key)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.latent_dim = int(latent_dim)
        # Seed 002 on MNIST: (N, 784) -> (N, 512) -> (N, 256), one Linear per size
        hidden, width = layers.mlp_stack(
            math.prod(self.image_shape),
            hidden_sizes,
            activation,
            negative_slope,
            batch_norm,
            dropout,
        )
        self.features = nn.Sequential(nn.Flatten(1), hidden)  # (N, hidden_sizes[-1])
        self._build_heads(width)


class ConvEncoder(GaussianEncoder):
    """Convolutional encoder: the DCGAN discriminator's stack, flattened, -> (mu, logvar)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        base_width: int = 32,
        batch_norm: bool = True,
        negative_slope: float = 0.2,
        init: str = "default",
    ) -> None:
        super().__init__()
        layers.check_conv_options(base_width, 0.0, self.config_key)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.latent_dim = int(latent_dim)
        s0, k = conv_levels(self.image_shape, self.config_key)
        widths = level_widths(base_width, k)
        # 64x64x3, base_width 32: (N, 3, 64, 64) -> (N, 32, 32, 32) -> (N, 64, 16, 16)
        # -> (N, 128, 8, 8) -> (N, 256, 4, 4), one Conv2d(4, 2, 1) per width
        self.features = nn.Sequential(
            down_stack(self.image_shape[0], widths, bool(batch_norm), negative_slope, 0.0),
            nn.Flatten(1),  # (N, widths[0] * s0 * s0): (N, 4096) at 64x64
        )
        self._build_heads(widths[0] * s0 * s0)
        apply_init(self, init, self.config_key)


class MLPDecoder(MLPGenerator):
    """z (N, latent_dim) -> pre-sigmoid pixels (N, *image_shape): an MLP generator with a
    linear output and the VAE's defaults (ReLU, no BatchNorm)."""

    config_key = "decoder"

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        hidden_sizes: Sequence[int] = (256, 512),
        activation: str = "relu",
        negative_slope: float = 0.2,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            latent_dim,
            image_shape,
            hidden_sizes=hidden_sizes,
            activation=activation,
            negative_slope=negative_slope,
            batch_norm=batch_norm,
            dropout=dropout,
            output_activation="linear",
        )


class ConvDecoder(DCGANGenerator):
    """z (N, latent_dim) -> pre-sigmoid pixels (N, C, H, W): the DCGAN generator's stack with a
    linear output."""

    config_key = "decoder"

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        base_width: int = 32,
        batch_norm: bool = True,
        activation: str = "relu",
        negative_slope: float = 0.2,
        init: str = "default",
    ) -> None:
        super().__init__(
            latent_dim,
            image_shape,
            base_width=base_width,
            batch_norm=batch_norm,
            activation=activation,
            negative_slope=negative_slope,
            output_activation="linear",
            init=init,
        )
