"""A residual generator and a plain discriminator, written as in any PyTorch tutorial.

The contract they meet (docs/contract.md): G has ``latent_dim`` and ``forward(z)`` returning
images (N, *image_shape) in the data's pixel range; D has ``forward(x)`` returning one logit
per image ((N, 1) here, which the GAN module accepts as well as (N,)). No ``extract``/``head``
split: that is only needed for an AC-GAN discriminator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """x + conv(relu(bn(conv(relu(bn(x)))))): the pre-activation block of He et al. 2016."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, C, H, W) in [-1, 1]: a linear map to a (H/4, W/4) grid,
    then residual blocks and two 2x nearest-neighbour upsamplings."""

    #: Read by gan-lightning's check that the output can reach the data's pixel range.
    output_activation_name = "tanh"

    def __init__(
        self, latent_dim: int = 32, image_shape: Sequence[int] = (1, 28, 28), width: int = 32
    ) -> None:
        super().__init__()
        channels, height, width_px = (int(s) for s in image_shape)
        if height % 4 or width_px % 4:
            raise ValueError(f"ResGenerator needs H and W divisible by 4; got {list(image_shape)}")
        self.latent_dim = int(latent_dim)  # the contract: the size of z
        self.image_shape = (channels, height, width_px)
        self.start = (int(width), height // 4, width_px // 4)
        self.project = nn.Linear(self.latent_dim, int(width) * (height // 4) * (width_px // 4))
        self.blocks = nn.Sequential(
            ResidualBlock(width),
            nn.Upsample(scale_factor=2),
            ResidualBlock(width),
            nn.Upsample(scale_factor=2),
            ResidualBlock(width),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.project(z).view(z.shape[0], *self.start))


class PlainDiscriminator(nn.Module):
    """images (N, C, H, W) -> logits (N, 1): strided convolutions, LeakyReLU, one linear layer."""

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28), width: int = 32) -> None:
        super().__init__()
        channels, height, width_px = (int(s) for s in image_shape)
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * (height // 4) * (width_px // 4), 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
