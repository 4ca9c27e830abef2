"""DiffAugment (Zhao et al. 2020): differentiable augmentations for both real and fake images.

A discriminator trained on little data memorises it. Augmenting only the real images would
teach G to produce augmented images; DiffAugment instead applies the same family of random,
*differentiable* transformations T to every image D sees, real and fake, in the D step and in
the G step, so D(T(x)) vs D(T(G(z))) is compared and G's gradient flows back through T.

Three policies, combined in order, each drawn independently per image and per call:

* ``color``: brightness ``x + (u - 1/2)``, saturation (scale around the per-pixel channel mean,
  a no-op on grayscale), contrast (scale around the image mean), u ~ U(0, 1);
* ``translation``: shift by up to ``ratio / 2`` of the side (1/16 each way by default),
  uncovered pixels 0;
* ``cutout``: zero a square of ``ratio`` of the side (1/2) at a random centre.

Images are in the model's pixel range; 0 is mid-grey in [-1, 1] (the zero padding of the
paper). Functions here are pure: ``(images, generator) -> images``, with the randomness drawn
from ``generator`` when given (tests) or torch's global RNG on the images' device (training).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from gan_lightning.errors import ConfigError

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _uniform(n: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(n, 1, 1, 1) U(0, 1) draws in ``like``'s dtype, on its device."""
    device = generator.device if generator is not None else like.device
    return torch.rand(n, 1, 1, 1, generator=generator, device=device).to(like)


def _randint(
    low: int, high: int, n: int, like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """(n,) integers in [low, high) on ``like``'s device."""
    device = generator.device if generator is not None else like.device
    return torch.randint(low, high, (n,), generator=generator, device=device).to(like.device)


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness, saturation and contrast (each differentiable in ``x``)."""
    n = x.shape[0]
    x = x + (_uniform(n, x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)  # per-pixel channel mean
    x = (x - mean) * (_uniform(n, x, generator) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # per-image mean
    return (x - mean) * (_uniform(n, x, generator) + 0.5) + mean


def _shifted(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """``x`` with image i shifted by (dy[i], dx[i]) pixels; uncovered pixels become 0."""
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy.view(n, 1, 1)  # source rows
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx.view(n, 1, 1)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)  # (n, h, w)
    index = rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)  # (n, h, w) flat source pixel
    moved = x.flatten(2).gather(2, index.view(n, 1, h * w).expand(n, c, h * w))
    return moved.view(n, c, h, w) * inside.unsqueeze(1).to(x.dtype)


def translation(
    x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = TRANSLATION_RATIO
) -> torch.Tensor:
    """Shift each image by up to ``ratio / 2`` of its side in each direction, zero-filled."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio / 2 + 0.5), int(w * ratio / 2 + 0.5)
    dy = _randint(-sy, sy + 1, n, x, generator)
    dx = _randint(-sx, sx + 1, n, x, generator)
    return _shifted(x, dy, dx)


def cutout(
    x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = CUTOUT_RATIO
) -> torch.Tensor:
    """Zero one square of ``ratio`` of the side per image, centred anywhere in the image."""
    n, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(0, h, n, x, generator).view(n, 1, 1)
    cx = _randint(0, w, n, x, generator).view(n, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = cy - size_y // 2, cx - size_x // 2
    hole = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~hole).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


def check_policy(policy: Sequence[str] | str | None) -> tuple[str, ...]:
    """``"translation,cutout"``, a list, or None/empty (off) -> a validated tuple."""
    if not policy:
        return ()
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [str(n).strip() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ConfigError(
            f"model.augment={list(names)}: {unknown} not known; choose from {list(POLICIES)} "
            "(e.g. model.augment=[color,translation,cutout], or null for none)."
        )
    return tuple(names)


def diff_augment(
    x: torch.Tensor, policy: Sequence[str], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply the ``policy`` transformations in order to a batch (N, C, H, W); differentiable."""
    if x.dim() != 4:
        raise ConfigError(
            f"model.augment needs image batches (N, C, H, W); got {tuple(x.shape)}. Use "
            "model.augment=null for data that are not images."
        )
    for name in policy:
        x = POLICIES[name](x, generator)
    return x
