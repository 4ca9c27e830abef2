"""Building blocks shared by every net: activations by name, the MLP stack, option checks.

Nets name their config node in error messages one way: a class attribute ``config_key``
(``generator``, ``discriminator``, ``encoder``, ``decoder``) passed to these checks, so a
subclass reused under another name (the VAE decoder is an MLP generator) says the right key.
"""

from __future__ import annotations

from collections.abc import Sequence

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
