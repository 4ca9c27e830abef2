"""DCGAN generator and discriminator whose depth and widths follow from the image shape.

Radford et al.'s DCGAN for 64x64 images is one instance of a family: the generator projects z
to a small ``s0 x s0`` feature map and doubles the resolution with stride-2 transposed
convolutions until it reaches the image size, halving the channel count each time; the
discriminator mirrors it with stride-2 convolutions. Deriving the stack from ``image_shape``
is what lets ``model=dcgan data=mnist`` build a 28x28x1 net and ``model=dcgan data=celeba`` a
64x64x3 net from one config.

Supported sizes (square images only):

* ``4 * 2**k`` for ``k >= 1`` (8, 16, 32, 64, 128, ...): ``s0 = 4``, k doublings;
* 28 (MNIST): ``s0 = 7``, two doublings (7 -> 14 -> 28).

With ``base_width = w`` the feature map at the ``j``-th resolution from the top has
``w * 2**j`` channels, e.g. 64x64: G 4x4x8w -> 8x8x4w -> 16x16x2w -> 32x32xw -> 64x64xC.

The conv stacks are built by :func:`up_stack` / :func:`down_stack`, which the convolutional
VAE (:mod:`gan_lightning.nets.vae`) reuses for its decoder and encoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.nets import layers
from gan_lightning.nets.conditional import DiscriminatorHeads, LabelInput, check_conditioning

#: Initialisations a config can name. ``dcgan``: conv weights N(0, 0.02), BatchNorm weights
#: N(1, 0.02), biases 0 (Radford et al., Sec. 4). ``default``: PyTorch's own.
INITS = ("dcgan", "default")

SUPPORTED_SIZES_TEXT = "28, or 4 * 2^k for k >= 1 (8, 16, 32, 64, 128, ...)"


def conv_levels(image_shape: Sequence[int], who: str) -> tuple[int, int]:
    """``(s0, k)``: the smallest feature map side and the number of stride-2 (de)convolutions.

    Raises :class:`ConfigError` for non-square or unsupported sizes, at construction time, so a
    bad ``data.image_shape`` fails before any data is loaded.
    """
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3:
        raise ConfigError(
            f"model.{who}.image_shape={list(shape)}: a convolutional net needs (C, H, W)."
        )
    _, height, width = shape
    if height != width:
        raise ConfigError(
            f"model.{who}.image_shape={list(shape)} is not square; the DCGAN/conv-VAE nets need "
            f"H == W with a side of {SUPPORTED_SIZES_TEXT}; resize or crop the data to a "
            "supported square."
        )
    if height == 28:
        return 7, 2
    k = int(round(math.log2(height / 4))) if height >= 8 else -1
    if k >= 1 and 4 * 2**k == height:
        return 4, k
    raise ConfigError(
        f"model.{who}.image_shape={list(shape)}: side {height} is not supported; supported "
        f"sides are {SUPPORTED_SIZES_TEXT}."
    )


def level_widths(base_width: int, k: int) -> list[int]:
    """Channels per resolution, smallest map first: ``[w*2^(k-1), ..., 2w, w]``."""
    return [int(base_width) * 2 ** (k - 1 - j) for j in range(k)]


def dcgan_init_(module: nn.Module) -> None:
    """Radford et al.'s init, in place: conv/linear weights N(0, 0.02), BatchNorm weights
    N(1, 0.02), all biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def apply_init(module: nn.Module, init: str, who: str) -> None:
    if init == "dcgan":
        dcgan_init_(module)
    elif init != "default":
        raise ConfigError(f"model.{who}.init={init!r} is not known; choose one of {list(INITS)}.")


def up_stack(
    in_features: int,
    out_channels: int,
    s0: int,
    widths: Sequence[int],
    batch_norm: bool,
    act: str,
    negative_slope: float,
) -> nn.Sequential:
    """(N, in_features) -> (N, out_channels, s0 * 2^k, s0 * 2^k), pre-activation output.

    A 1x1 -> s0 x s0 transposed convolution (the "project and reshape" of DCGAN), then one
    stride-2 transposed convolution per entry of ``widths``; BatchNorm + activation after every
    layer but the last. Bias is dropped where BatchNorm follows (it would be cancelled).

    Shapes of ``model=dcgan`` (z of 100, ``base_width=64``; ``widths`` = [128, 64] on MNIST,
    [512, 256, 128, 64] at 64x64x3)::

        MNIST 28x28x1            64x64x3
        (N, 100, 1, 1)           (N, 100, 1, 1)      Unflatten
        (N, 128, 7, 7)           (N, 512, 4, 4)      ConvTranspose2d(k=s0, s=1)
        (N, 64, 14, 14)          (N, 256, 8, 8)      one per later width, ConvTranspose2d(4, 2, 1)
                                 (N, 128, 16, 16)
                                 (N, 64, 32, 32)
        (N, 1, 28, 28)           (N, 3, 64, 64)      the last ConvTranspose2d(4, 2, 1)
    """

    def norm_act(channels: int) -> list[nn.Module]:
        norm = [nn.BatchNorm2d(channels)] if batch_norm else []
        return [*norm, layers.activation(act, negative_slope)]

    modules: list[nn.Module] = [
        nn.Unflatten(1, (in_features, 1, 1)),  # (N, Z, 1, 1)
        nn.ConvTranspose2d(in_features, widths[0], s0, 1, 0, bias=not batch_norm),
        *norm_act(widths[0]),  # (N, widths[0], s0, s0)
    ]
    for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):  # side s -> 2s
        modules += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=not batch_norm), *norm_act(c_out)]
        # (N, c_out, 2s, 2s)
    modules.append(nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1))  # (N, C, H, W)
    return nn.Sequential(*modules)


def down_stack(
    in_channels: int,
    widths: Sequence[int],
    batch_norm: bool,
    negative_slope: float,
    dropout: float,
) -> nn.Sequential:
    """(N, C, H, W) -> (N, widths[0], s0, s0): one stride-2 convolution per entry of ``widths``,
    largest resolution first. No BatchNorm on the first layer (it sees raw pixels; DCGAN).

    Shapes of ``model=dcgan`` (``base_width=64``)::

        MNIST 28x28x1            64x64x3
        (N, 1, 28, 28)           (N, 3, 64, 64)      input
        (N, 64, 14, 14)          (N, 64, 32, 32)     one Conv2d(4, 2, 1) per width
        (N, 128, 7, 7)           (N, 128, 16, 16)
                                 (N, 256, 8, 8)
                                 (N, 512, 4, 4)      = (N, widths[0], s0, s0)
    """
    modules: list[nn.Module] = []
    c_in = in_channels
    for index, c_out in enumerate(reversed(list(widths))):
        use_bn = batch_norm and index > 0
        modules.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not use_bn))
        if use_bn:
            modules.append(nn.BatchNorm2d(c_out))
        modules.append(nn.LeakyReLU(negative_slope))
        if dropout > 0:
            modules.append(nn.Dropout(dropout))
        c_in = c_out  # (N, c_out, s/2, s/2)
    return nn.Sequential(*modules)


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, C, H, W) through transposed convolutions.

    Args:
        latent_dim: size of z.
        image_shape: (C, H, W) of the data; H == W, see the module docstring for the sides.
        base_width: channels of the last hidden map (``ngf`` in the DCGAN code).
        batch_norm: BatchNorm after every hidden layer (seed 003's G "normal" vs "ablation").
        activation / negative_slope: hidden activation; DCGAN uses ReLU, seed 003 LeakyReLU.
        output_activation: ``tanh`` for [-1, 1] data (default), ``sigmoid``, or ``linear``.
        init: ``dcgan`` (N(0, 0.02)) or ``default``.
        num_classes: > 0 for a class-conditional G (the label's embedding joins z).
        spectral_norm: spectral normalisation of every (transposed) convolution.
    """

    config_key = "generator"

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        base_width: int = 64,
        batch_norm: bool = True,
        activation: str = "relu",
        negative_slope: float = 0.2,
        output_activation: str = "tanh",
        init: str = "dcgan",
        num_classes: int = 0,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        layers.check_conv_options(base_width, 0.0, self.config_key)
        layers.check_latent_dim(latent_dim, self.config_key)
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes)
        self.image_shape = tuple(int(s) for s in image_shape)
        s0, k = conv_levels(self.image_shape, self.config_key)
        self.output_activation_name = output_activation
        self.label_input = LabelInput(self.num_classes, self.config_key)
        self.net = up_stack(
            self.latent_dim + self.label_input.extra_features,
            self.image_shape[0],
            s0,
            level_widths(base_width, k),
            bool(batch_norm),
            activation,
            negative_slope,
        )
        self.out_act = layers.output_activation(output_activation)
        apply_init(self, init, self.config_key)
        if spectral_norm:
            layers.apply_spectral_norm(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.out_act(self.net(self.label_input(z, labels)))  # (N, C, H, W)


class DCGANDiscriminator(nn.Module):
    """images (N, C, H, W) -> logits (N,) through strided convolutions (no sigmoid: the loss
    takes logits, see :mod:`gan_lightning.losses`).

    Args:
        image_shape: (C, H, W) of the data.
        base_width: channels of the first conv layer (``ndf`` in the DCGAN code).
        batch_norm: BatchNorm after every conv but the first (seed 003's D normal/ablation).
        negative_slope: LeakyReLU slope (0.2 in DCGAN).
        dropout: dropout after each hidden activation (0 = off).
        init: ``dcgan`` (N(0, 0.02)) or ``default``.
        num_classes / conditioning: a class-conditional D, ``projection`` or ``acgan``
            (:mod:`gan_lightning.nets.conditional`), on the flattened last feature map.
        spectral_norm: spectral normalisation of every convolution (and the heads).
        minibatch_std: group size of the minibatch standard deviation feature (Karras et al.
            2018), one constant extra channel of the last map before the last conv; 0 = off.
        pack: PacGAN's m (Lin et al. 2018): D judges m images at once, stacked along channels
            (the first conv takes m * C), and returns each pack's logit m times; 1 = off.

    ``extract(x)`` is the per-image (per-pack) feature map, without the minibatch-stddev
    channel: the projection and AC-GAN heads, and anything else that reads D's features, see
    evidence about each image alone; only the real/fake logit sees the batch statistic
    (``head`` appends it). ``forward(x, y) == head(extract(x), y)`` holds with every option.
    """

    config_key = "discriminator"

    def __init__(
        self,
        image_shape: Sequence[int],
        base_width: int = 64,
        batch_norm: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        init: str = "dcgan",
        num_classes: int = 0,
        conditioning: str | None = "none",
        spectral_norm: bool = False,
        minibatch_std: int = 0,
        pack: int = 1,
    ) -> None:
        super().__init__()
        layers.check_conv_options(base_width, dropout, self.config_key)
        self.conditioning = check_conditioning(num_classes, conditioning, self.config_key)
        self.num_classes = int(num_classes)
        self.minibatch_std = layers.check_minibatch_std(minibatch_std, self.config_key)
        self.pack = layers.check_pack(pack, self.num_classes, self.config_key)
        self.image_shape = tuple(int(s) for s in image_shape)
        s0, k = conv_levels(self.image_shape, self.config_key)
        widths = level_widths(base_width, k)
        self.features = down_stack(
            self.pack * self.image_shape[0],
            widths,
            bool(batch_norm),
            negative_slope,
            float(dropout),
        )  # (N / pack, widths[0], s0, s0)
        self.mbstd = (
            layers.MinibatchStdDev(self.minibatch_std) if self.minibatch_std else nn.Identity()
        )  # (N / pack, widths[0] + 1, s0, s0) when on
        self.out = nn.Conv2d(widths[0] + bool(self.minibatch_std), 1, s0, 1, 0)  # (N/pack, 1, 1, 1)
        self.heads = DiscriminatorHeads(widths[0] * s0 * s0, self.num_classes, self.conditioning)
        apply_init(self, init, self.config_key)
        if spectral_norm:
            layers.apply_spectral_norm(self)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        packed = layers.pack_images(x, self.pack, self.config_key)  # (N / pack, pack * C, H, W)
        return self.features(packed)  # (N / pack, widths[0], s0, s0)

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.heads.project(self.out(self.mbstd(h)).flatten(), h, labels)  # (N / pack,)
        return layers.unpack_logits(logits, self.pack)  # (N,)

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.heads.classify(h)  # (N, num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.extract(x), labels)  # (N,)
