"""The one place that knows about pixel ranges.

DataModules emit images in a configured range (``[-1, 1]`` by default); generators produce
that range; everything that leaves the model for a human or a metric (PNG grids, W&B images,
feature extractors) goes back through :func:`to_unit` / :func:`to_uint8` here, so that a range
change can never silently darken a grid or shift an FID.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gan_lightning.errors import ConfigError

#: The ranges the DataModules can emit, named as users write them in configs.
SUPPORTED_PIXEL_RANGES: tuple[tuple[float, float], ...] = ((-1.0, 1.0), (-0.5, 0.5), (0.0, 1.0))

#: The interval each generator output activation can produce (``None`` = unbounded).
ACTIVATION_RANGES: dict[str, tuple[float, float] | None] = {
    "tanh": (-1.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "linear": None,
    "identity": None,
}


def as_pixel_range(value: Sequence[float]) -> tuple[float, float]:
    """Validate and normalise a ``[low, high]`` pair from a config."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"pixel_range must be a pair [low, high]; got {value!r}. "
            f"Supported: {[list(r) for r in SUPPORTED_PIXEL_RANGES]}"
        ) from err
    if (low, high) not in SUPPORTED_PIXEL_RANGES:
        raise ConfigError(
            f"pixel_range={[low, high]} is not supported; choose one of "
            f"{[list(r) for r in SUPPORTED_PIXEL_RANGES]} (e.g. data.pixel_range=[-1,1])."
        )
    return low, high


def activation_can_produce(activation: str, pixel_range: Sequence[float]) -> bool:
    """Whether an output activation's image contains the whole data range."""
    if activation not in ACTIVATION_RANGES:
        raise ConfigError(
            f"Unknown output activation {activation!r}; choose one of {sorted(ACTIVATION_RANGES)}."
        )
    bounds = ACTIVATION_RANGES[activation]
    if bounds is None:
        return True
    low, high = as_pixel_range(pixel_range)
    return bounds[0] <= low and high <= bounds[1]


def to_unit(images: torch.Tensor, pixel_range: Sequence[float]) -> torch.Tensor:
    """Map images from ``pixel_range`` to ``[0, 1]`` (clamped: generators overshoot)."""
    low, high = (float(v) for v in pixel_range)
    return ((images.float() - low) / (high - low)).clamp_(0.0, 1.0)


def from_unit(images: torch.Tensor, pixel_range: Sequence[float]) -> torch.Tensor:
    """Map ``[0, 1]`` images into ``pixel_range``."""
    low, high = (float(v) for v in pixel_range)
    return images * (high - low) + low


def uint8_to_range(images: torch.Tensor, pixel_range: Sequence[float]) -> torch.Tensor:
    """uint8 pixels (0..255) to float in ``pixel_range``; the DataModules' only conversion."""
    return from_unit(images.float() / 255.0, pixel_range)


def to_uint8(images: torch.Tensor, pixel_range: Sequence[float]) -> torch.Tensor:
    """Images in ``pixel_range`` to uint8 0..255 (what W&B, PNG and Inception expect)."""
    return (to_unit(images, pixel_range) * 255.0).round_().to(torch.uint8)
