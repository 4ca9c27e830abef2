"""Building blocks shared by every net: activations by name, the MLP stack, option checks.

Nets name their config node in error messages one way: a class attribute ``config_key``
(``generator``, ``discriminator``, ``encoder``, ``decoder``) passed to these checks, so a
subclass reused under another name (the VAE decoder is an MLP generator) says the right key.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gan_lightning.errors import ConfigError

ACTIVATIONS = ("leaky_relu", "relu", "tanh", "softplus", "sigmoid")
OUTPUT_ACTIVATIONS = ("tanh", "sigmoid", "linear")


def activation(name: str, negative_slope: float = 0.2) -> nn.Module:
    """Build a hidden activation by name (configs name it, code never hard-codes it)."""
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "softplus":
        return nn.Softplus()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ConfigError(f"Unknown activation {name!r}; choose one of {list(ACTIVATIONS)}.")


def output_activation(name: str) -> nn.Module:
    """The generator's last activation; it decides which pixel ranges G can produce."""
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name in ("linear", "identity"):
        return nn.Identity()
    raise ConfigError(
        f"Unknown output_activation {name!r}; choose one of {list(OUTPUT_ACTIVATIONS)}."
    )


def check_mlp_options(hidden_sizes: Sequence[int], dropout: float, key: str) -> None:
    """Hidden sizes and dropout of an MLP net under ``model.<key>``."""
    if any(int(h) < 1 for h in hidden_sizes):
        raise ConfigError(
            f"model.{key}.hidden_sizes must be positive ints; got {list(hidden_sizes)}."
        )
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"model.{key}.dropout must be in [0, 1); got {dropout}.")


def check_latent_dim(latent_dim: int, key: str) -> None:
    """A latent size < 1 has nothing to sample (and would fail deep inside torch)."""
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ConfigError(
            f"model.{key}.latent_dim={latent_dim!r} must be an integer >= 1 (set model.latent_dim)."
        )


def check_conv_options(base_width: int, dropout: float, key: str) -> None:
    """Width and dropout of a convolutional net under ``model.<key>``."""
    if int(base_width) < 1:
        raise ConfigError(f"model.{key}.base_width must be >= 1; got {base_width}.")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"model.{key}.dropout must be in [0, 1); got {dropout}.")


def check_minibatch_std(group_size: int, key: str) -> int:
    """``minibatch_std``: 0 (off) or a group size >= 2 (a group of one has no spread)."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 0:
        raise ConfigError(
            f"model.{key}.minibatch_std={group_size!r} must be 0 (off) or a group size >= 2 "
            "(4 in Karras et al. 2018)."
        )
    if int(group_size) == 1:
        raise ConfigError(
            f"model.{key}.minibatch_std=1: a group of one image has a standard deviation of 0 "
            "whatever the images; use 0 (off) or a group size >= 2 (4 in Karras et al. 2018)."
        )
    return int(group_size)


def check_pack(pack: int, num_classes: int, key: str) -> int:
    """``pack``: 1 (off) or m >= 2 images per discriminator decision, unconditional D only."""
    if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
        raise ConfigError(
            f"model.{key}.pack={pack!r} must be an integer >= 1 (1: off; 2 in PacGAN, Lin et "
            "al. 2018)."
        )
    if int(pack) > 1 and int(num_classes) > 0:
        raise ConfigError(
            f"model.{key}.pack={pack} with num_classes={num_classes}: packing (PacGAN) is "
            "defined for an unconditional discriminator, and one decision per pack cannot "
            "take one label per image; use pack=1 with a conditional D (class labels, or the "
            "cluster ids of self-conditioning), or num_classes=0 with packing."
        )
    return int(pack)


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN Sec. 3): one extra feature
    channel telling D how varied the images of its minibatch are, so a generator that
    collapses to few modes is easy to tell from the data.

    (N, C, *rest) -> (N, C + 1, *rest); ``rest`` may be empty (MLP features (N, F)).

    The batch is split into groups of ``g`` images, ``g`` the largest divisor of N that is
    <= ``group_size`` (N itself when N < ``group_size``; StyleGAN2 takes ``min(group_size, N)``
    and fails when that does not divide N: here any N works, a prime N in groups of one, whose
    feature is the constant ``sqrt(1e-8)``). As in the reference implementations (ProGAN,
    StyleGAN2) the groups are strided: image i belongs to group ``i % (N // g)``. For each group,
    the standard deviation of every feature over its g images (population variance + 1e-8,
    then the square root) is averaged over all features to one number, and that number is
    appended, as a constant channel, to each image of the group. Computed in fp32.

    No weights; the layer after it takes one more input channel.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = int(group_size)
        self.eps = float(eps)

    def group_for(self, n: int) -> int:
        """The group size used for a batch of ``n``: the largest divisor of n <= group_size."""
        return next(g for g in range(min(self.group_size, n), 0, -1) if n % g == 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        g = self.group_for(n)
        # (g, M, C, *rest) with M = n // g: image i sits at [i // M, i % M], in group i % M
        y = x.float().reshape(g, n // g, *x.shape[1:])
        var = (y - y.mean(dim=0)).square().mean(dim=0)  # (M, C, *rest), over each group
        std = (var + self.eps).sqrt().flatten(1).mean(dim=1)  # (M,): one number per group
        feature = std.repeat(g).to(x.dtype)  # (N,): image i gets its group's i % M
        feature = feature.view(n, 1, *([1] * (x.dim() - 2))).expand(n, 1, *x.shape[2:])
        return torch.cat([x, feature], dim=1)  # (N, C + 1, *rest)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def pack_images(x: torch.Tensor, pack: int, key: str) -> torch.Tensor:
    """PacGAN's packing (Lin et al. 2018): m consecutive images joined along dim 1.

    (N, C, *rest) -> (N // m, m * C, *rest): images ``k*m .. k*m + m-1`` form pack k, the
    channels of the first image first. Real and fake batches are packed separately, so a pack
    is all real or all fake. A batch that m does not divide is refused.
    """
    n = x.shape[0]
    if pack == 1:
        return x
    if n % pack:
        raise ConfigError(
            f"model.{key}.pack={pack} needs a batch size divisible by {pack}, but D got a batch "
            f"of {n} images; set data.batch_size to a multiple of {pack} (training drops the "
            "last incomplete batch)."
        )
    return x.reshape(n // pack, pack * x.shape[1], *x.shape[2:])


def unpack_logits(logits: torch.Tensor, pack: int) -> torch.Tensor:
    """One logit per pack (N // m,) -> one per image (N,): each pack's logit repeated m times,
    so the mean loss over images is the mean loss over packs (the GAN module is unchanged)."""
    return logits if pack == 1 else logits.repeat_interleave(pack)


def mlp_stack(
    in_features: int,
    hidden_sizes: Sequence[int],
    act: str,
    negative_slope: float,
    batch_norm: bool,
    dropout: float,
) -> tuple[nn.Sequential, int]:
    """Linear -> [BatchNorm] -> activation -> [Dropout] for each hidden size; returns the stack
    and its output width.

    BatchNorm is never put after the first layer: its input is the raw latent (G) or raw
    pixels (D), and seed 000 and DCGAN both leave that layer un-normalised.
    """
    modules: list[nn.Module] = []
    width = in_features
    for index, size in enumerate(hidden_sizes):
        modules.append(nn.Linear(width, int(size)))
        if batch_norm and index > 0:
            modules.append(nn.BatchNorm1d(int(size)))
        modules.append(activation(act, negative_slope))
        if dropout > 0:
            modules.append(nn.Dropout(dropout))
        width = int(size)
    return nn.Sequential(*modules), width


#: Layer types spectral normalisation applies to, and the weight dimension that indexes their
#: output features (a transposed convolution stores (in, out, kH, kW)).
SPECTRAL_NORM_DIMS: dict[type[nn.Module], int] = {
    nn.Linear: 0,
    nn.Conv2d: 0,
    nn.ConvTranspose2d: 1,
    nn.Embedding: 0,
}


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every weight layer of ``module``.

    Each Linear, Conv2d, ConvTranspose2d and Embedding weight W is reparametrised as
    ``W / sigma(W)``, sigma estimated by one power iteration per training forward
    (``torch.nn.utils.parametrizations.spectral_norm``), so every layer is (about) 1-Lipschitz.
    """
    from torch.nn.utils.parametrizations import spectral_norm

    for child in list(module.modules()):
        dim = SPECTRAL_NORM_DIMS.get(type(child))
        if dim is not None:
            spectral_norm(child, dim=dim)
    return module
