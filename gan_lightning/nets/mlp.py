"""Configurable MLP generator and discriminator.

Every fully connected GAN in the seed reports is a config of these two classes:

* seed 000: G 100-128-256-512-784 (BatchNorm after every hidden layer but the first),
  D 784-512-256-128-1;
* seed 001: G with one hidden layer, D with two or three (11 units for the 1-D toy, 50 for MNIST);
* seed 003: G 100-256-512-1024-784, D 784-1024-512-256-1 with dropout;
* seed 004: G and D with two hidden layers of 256 units, latent size 64.

The discriminator returns *logits*; the sigmoid of the seeds lives inside the loss
(``BCEWithLogits``), which is the same function but stays finite under mixed precision.
Both nets take class labels when ``num_classes > 0`` (:mod:`gan_lightning.nets.conditional`)
and spectral normalisation of every weight layer with ``spectral_norm: true``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gan_lightning.nets import layers
from gan_lightning.nets.conditional import DiscriminatorHeads, LabelInput, check_conditioning


class MLPGenerator(nn.Module):
    """z (N, latent_dim) [and labels (N,)] -> images (N, *image_shape)."""

    config_key = "generator"

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        hidden_sizes: Sequence[int] = (128, 256, 512),
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        batch_norm: bool = True,
        dropout: float = 0.0,
        output_activation: str = "tanh",
        num_classes: int = 0,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        layers.check_mlp_options(hidden_sizes, dropout, self.config_key)
        layers.check_latent_dim(latent_dim, self.config_key)
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.output_activation_name = output_activation
        self.label_input = LabelInput(self.num_classes, self.config_key)
        # Seed 000 on MNIST: (N, 100) -> (N, 128) -> (N, 256) -> (N, 512), one Linear per size
        self.hidden, width = layers.mlp_stack(
            self.latent_dim + self.label_input.extra_features,
            hidden_sizes,
            activation,
            negative_slope,
            batch_norm,
            dropout,
        )
        self.out = nn.Linear(width, math.prod(self.image_shape))  # (N, 784)
        self.out_act = layers.output_activation(output_activation)
        if spectral_norm:
            layers.apply_spectral_norm(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden(self.label_input(z, labels))  # (N, hidden_sizes[-1])
        x = self.out_act(self.out(h))  # (N, prod(image_shape))
        return x.view(z.shape[0], *self.image_shape)  # (N, C, H, W) or (N, D)


class MLPDiscriminator(nn.Module):
    """images (N, *image_shape) [and labels (N,)] -> logits (N,).

    ``minibatch_std`` (group size, 0 = off; Karras et al. 2018) appends the minibatch
    standard deviation as one extra feature before the last layer; ``pack`` (1 = off; PacGAN,
    Lin et al. 2018) judges m images at once, concatenated (the first Linear takes m * D
    inputs), and returns each pack's logit m times. As in the DCGAN D, ``extract(x)`` is the
    per-image (per-pack) features without the stddev feature, which the projection/AC-GAN
    heads read; ``head`` appends it for the real/fake logit only.
    """

    config_key = "discriminator"

    def __init__(
        self,
        image_shape: Sequence[int],
        hidden_sizes: Sequence[int] = (512, 256, 128),
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        batch_norm: bool = False,
        dropout: float = 0.0,
        num_classes: int = 0,
        conditioning: str | None = "none",
        spectral_norm: bool = False,
        minibatch_std: int = 0,
        pack: int = 1,
    ) -> None:
        super().__init__()
        layers.check_mlp_options(hidden_sizes, dropout, self.config_key)
        self.conditioning = check_conditioning(num_classes, conditioning, self.config_key)
        self.num_classes = int(num_classes)
        self.minibatch_std = layers.check_minibatch_std(minibatch_std, self.config_key)
        self.pack = layers.check_pack(pack, self.num_classes, self.config_key)
        self.image_shape = tuple(int(s) for s in image_shape)
        # Seed 000 on MNIST: (N, 784) -> (N, 512) -> (N, 256) -> (N, 128), one Linear per size
        self.hidden, width = layers.mlp_stack(
            self.pack * math.prod(self.image_shape),
            hidden_sizes,
            activation,
            negative_slope,
            batch_norm,
            dropout,
        )
        self.mbstd = (
            layers.MinibatchStdDev(self.minibatch_std) if self.minibatch_std else nn.Identity()
        )  # (N / pack, width + 1) when on
        self.out = nn.Linear(width + bool(self.minibatch_std), 1)  # (N / pack, 1)
        self.heads = DiscriminatorHeads(width, self.num_classes, self.conditioning)
        if spectral_norm:
            layers.apply_spectral_norm(self)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        packed = layers.pack_images(x.flatten(1), self.pack, self.config_key)  # (N/pack, pack*D)
        return self.hidden(packed)  # (N / pack, hidden_sizes[-1])

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.heads.project(self.out(self.mbstd(h)).squeeze(1), h, labels)  # (N / pack,)
        return layers.unpack_logits(logits, self.pack)  # (N,)

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.heads.classify(h)  # (N, num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.extract(x), labels)  # (N,)
