"""DiffAugment as pure functions: what each policy does to known images, and gradients."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.augment import (
    _shifted,
    check_policy,
    color,
    cutout,
    diff_augment,
    translation,
)
from gan_lightning.errors import ConfigError


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shift_moves_pixels_and_fills_zero():
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4)
    down_right = _shifted(x, torch.tensor([1]), torch.tensor([2]))
    expected = torch.zeros(4, 4)
    expected[1:, 2:] = x[0, 0, :3, :2]
    torch.testing.assert_close(down_right[0, 0], expected)
    up = _shifted(x, torch.tensor([-1]), torch.tensor([0]))
    torch.testing.assert_close(up[0, 0, :3], x[0, 0, 1:])
    assert (up[0, 0, 3] == 0).all()


def test_translation_stays_within_an_eighth_of_the_side():
    x = torch.zeros(64, 1, 32, 32)
    x[:, :, 16, 16] = 1.0  # one bright pixel per image
    out = translation(x, seeded())
    rows, cols = (out[:, 0] == 1.0).nonzero()[:, 1:].T
    assert out.sum() == 64  # the pixel never leaves a 32-px image when shifted by <= 2
    assert (rows - 16).abs().max() <= 2 and (cols - 16).abs().max() <= 2
    assert len({(int(r), int(c)) for r, c in zip(rows, cols, strict=True)}) > 5  # random per image


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(32, 3, 28, 28)
    out = cutout(x, seeded())
    holes = (out == 0).all(dim=1)  # (N, H, W): all channels cut together
    for hole in holes:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert int(hole.sum()) == len(rows) * len(cols)  # a rectangle
        assert len(rows) <= 14 and len(cols) <= 14  # at most 14 x 14, clipped at the border
    assert (holes.flatten(1).sum(1) == 14 * 14).any()  # unclipped squares are exactly 14 x 14


def test_color_shifts_brightness_per_image_and_keeps_gray_gray():
    x = torch.zeros(16, 1, 8, 8)
    out = color(x, seeded())
    per_image = out.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image))  # flat stays flat
    assert per_image[:, 0].abs().max() <= 0.5 and per_image[:, 0].std() > 0.05


def test_gradients_flow_through_every_policy():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    out = diff_augment(x, ("color", "translation", "cutout"), seeded())
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_same_generator_same_draws_and_policy_checks():
    x = torch.rand(8, 1, 28, 28)
    a = diff_augment(x, check_policy("color,translation,cutout"), seeded(3))
    b = diff_augment(x, check_policy(["color", "translation", "cutout"]), seeded(3))
    torch.testing.assert_close(a, b)
    assert check_policy(None) == () and check_policy("") == ()
    with pytest.raises(ConfigError, match="model.augment"):
        check_policy(["flip"])
    with pytest.raises(ConfigError, match="image batches"):
        diff_augment(torch.rand(4, 1), ("translation",))
