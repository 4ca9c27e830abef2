"""Linear/spherical interpolation and the truncation trick."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.nets.priors import NormalPrior, UniformPrior
from gan_lightning.utils.latents import (
    check_method,
    default_methods,
    interpolate,
    lerp,
    slerp,
    truncate_,
)


def test_both_paths_start_and_end_at_the_pair():
    z0, z1 = torch.randn(3, 16), torch.randn(3, 16)
    for method in ("linear", "spherical"):
        path = interpolate(z0, z1, 7, method)
        assert path.shape == (3, 7, 16)
        torch.testing.assert_close(path[:, 0], z0)
        torch.testing.assert_close(path[:, -1], z1, atol=1e-5, rtol=1e-5)


def test_lerp_midpoint_is_the_mean():
    z0, z1 = torch.randn(2, 4), torch.randn(2, 4)
    torch.testing.assert_close(lerp(z0, z1, torch.tensor([0.5]))[:, 0], (z0 + z1) / 2)


def test_slerp_follows_the_great_circle():
    """Orthogonal unit vectors: the midpoint is (e0 + e1)/sqrt(2), norm 1 all the way; the
    straight line dips to norm 1/sqrt(2) there."""
    e0, e1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    t = torch.linspace(0, 1, 9)
    path = slerp(e0, e1, t)[0]
    torch.testing.assert_close(path.norm(dim=1), torch.ones(9))
    torch.testing.assert_close(path[4], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    assert lerp(e0, e1, t)[0, 4].norm().item() == pytest.approx(1 / math.sqrt(2))


def test_slerp_of_a_parallel_pair_does_not_divide_by_zero():
    z = torch.tensor([[1.0, 2.0, 3.0]])
    path = slerp(z, 2 * z, torch.linspace(0, 1, 5))
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path[0, 2], 1.5 * z[0])


def test_methods_follow_the_prior():
    assert default_methods(NormalPrior()) == ("linear", "spherical")
    assert default_methods(UniformPrior(-1, 1)) == ("linear",)
    with pytest.raises(ConfigError, match="normal prior"):
        check_method("spherical", UniformPrior(-1, 1))
    with pytest.raises(ConfigError, match="not known"):
        check_method("cubic", NormalPrior())
    with pytest.raises(ConfigError, match="at least 2"):
        interpolate(torch.zeros(1, 2), torch.ones(1, 2), 1, "linear")


def test_truncation_redraws_only_large_coordinates():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(256, 32, generator=generator)
    small = z.abs() <= 0.5
    kept = z[small].clone()
    truncate_(z, 0.5, NormalPrior(), generator)
    assert z.abs().max() <= 0.5
    torch.testing.assert_close(z[small], kept)  # coordinates inside the threshold stay
    with pytest.raises(ConfigError, match="> 0"):
        truncate_(z, 0.0, NormalPrior())
    with pytest.raises(ConfigError, match="normal prior"):
        truncate_(z, 1.0, UniformPrior(-1, 1))
