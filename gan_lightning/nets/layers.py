"""Small building blocks shared by the MLP and convolutional nets."""

from __future__ import annotations

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
