"""Latent-space helpers shared by the interpolation callback and the generate CLI.

Why spherical interpolation: for a d-dimensional N(0, I) prior almost all mass lies on a thin
shell of radius ~sqrt(d); the straight line between two samples cuts through the low-norm
interior, where the generator saw no training latents (the midpoint of two independent
samples has norm ~sqrt(d/2)). Slerp follows the shell instead. For a uniform (hypercube)
prior, straight lines stay inside the support, and slerp would leave it, so only linear
interpolation applies there.
"""

from __future__ import annotations

from typing import Any

import torch

from gan_lightning.errors import ConfigError

#: Interpolation methods as users write them (``method=...``, callback ``methods: [...]``).
INTERPOLATION_METHODS = ("linear", "spherical")


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation; ``z0``/``z1`` (N, D), ``t`` (T,) -> (N, T, D)."""
    t = t.view(1, -1, 1).to(z0)
    return z0[:, None, :] * (1 - t) + z1[:, None, :] * t


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the great circle (norms interpolated linearly).

    ``z0``/``z1`` (N, D), ``t`` (T,) -> (N, T, D). Nearly parallel pairs fall back to lerp.
    """
    t = t.view(1, -1, 1).to(z0)
    n0 = z0.norm(dim=1, keepdim=True)  # (N, 1)
    n1 = z1.norm(dim=1, keepdim=True)
    cos = ((z0 / n0.clamp_min(eps)) * (z1 / n1.clamp_min(eps))).sum(1, keepdim=True)
    omega = torch.acos(cos.clamp(-1 + eps, 1 - eps))[:, None, :]  # (N, 1, 1)
    sin = torch.sin(omega)
    w0 = torch.sin((1 - t) * omega) / sin  # (N, T, 1)
    w1 = torch.sin(t * omega) / sin
    out = w0 * z0[:, None, :] + w1 * z1[:, None, :]
    parallel = (sin.abs() < 1e-4).expand_as(out)
    return torch.where(parallel, lerp(z0, z1, t.view(-1)), out)


def default_methods(prior: Any) -> tuple[str, ...]:
    """Linear always; spherical too when the prior is a normal distribution."""
    if getattr(prior, "name", None) == "normal":
        return INTERPOLATION_METHODS
    return ("linear",)


def check_method(method: str, prior: Any) -> str:
    if method not in INTERPOLATION_METHODS:
        raise ConfigError(
            f"interpolation method={method!r} is not known; choose one of {list(INTERPOLATION_METHODS)}."
        )
    if method == "spherical" and getattr(prior, "name", None) != "normal":
        raise ConfigError(
            f"spherical interpolation needs a normal prior; this model's prior is {prior!r}. "
            "Use method=linear."
        )
    return method


def interpolate(z0: torch.Tensor, z1: torch.Tensor, num_steps: int, method: str) -> torch.Tensor:
    """``num_steps`` latents from each z0 to its z1 (both ends included): (N, num_steps, D)."""
    if num_steps < 2:
        raise ConfigError(f"interpolation needs at least 2 steps (both ends); got {num_steps}.")
    t = torch.linspace(0.0, 1.0, int(num_steps))
    return slerp(z0, z1, t) if method == "spherical" else lerp(z0, z1, t)


def truncate_(
    z: torch.Tensor, threshold: float, prior: Any, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The truncation trick, in place: redraw every coordinate with ``|z_i| > threshold``.

    Trades diversity for fidelity (smaller threshold, more typical samples). Only defined for a
    normal prior; resampling terminates quickly for any threshold > 0 (P(|z| <= 0.1) ~ 8%).
    """
    if getattr(prior, "name", None) != "normal":
        raise ConfigError(
            f"truncation resamples |z| > threshold under a normal prior; this model's prior is "
            f"{prior!r}. Leave truncation=null."
        )
    if not threshold > 0:
        raise ConfigError(f"truncation must be > 0 (e.g. truncation=1.0); got {threshold}.")
    mask = z.abs() > threshold
    while bool(mask.any()):
        fresh = prior.sample(tuple(z.shape), z.device, generator)
        z[mask] = fresh[mask]
        mask = z.abs() > threshold
    return z
