"""gan_lightning/utils/pixels.py: the one pixel-range conversion."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.utils.pixels import (
    activation_can_produce,
    as_pixel_range,
    from_unit,
    to_uint8,
    to_unit,
    uint8_to_range,
)

RANGES = [(-1.0, 1.0), (-0.5, 0.5), (0.0, 1.0)]


@pytest.mark.parametrize("pixel_range", RANGES)
def test_uint8_round_trips_through_every_range(pixel_range):
    pixels = torch.arange(256, dtype=torch.uint8)
    images = uint8_to_range(pixels, pixel_range)
    assert images.min() == pixel_range[0] and images.max() == pixel_range[1]
    assert torch.equal(to_uint8(images, pixel_range), pixels)


@pytest.mark.parametrize("pixel_range", RANGES)
def test_to_unit_inverts_from_unit_and_clamps_overshoot(pixel_range):
    unit = torch.linspace(0, 1, 11)
    torch.testing.assert_close(to_unit(from_unit(unit, pixel_range), pixel_range), unit)
    low, high = pixel_range
    overshoot = torch.tensor([low - 0.3, high + 0.3])
    assert to_unit(overshoot, pixel_range).tolist() == [0.0, 1.0]


def test_only_supported_ranges_are_accepted_with_the_choices_named():
    assert as_pixel_range([0, 1]) == (0.0, 1.0)
    with pytest.raises(ConfigError, match=r"pixel_range=\[0.0, 255.0\] is not supported"):
        as_pixel_range([0, 255])
    with pytest.raises(ConfigError, match="must be a pair"):
        as_pixel_range("wide")


@pytest.mark.parametrize(
    ("activation", "pixel_range", "possible"),
    [
        ("tanh", [-1, 1], True),
        ("tanh", [0, 1], True),
        ("sigmoid", [0, 1], True),
        ("sigmoid", [-1, 1], False),
        ("linear", [-1, 1], True),
    ],
)
def test_which_output_activation_can_produce_which_range(activation, pixel_range, possible):
    assert activation_can_produce(activation, pixel_range) is possible


def test_an_unknown_activation_is_named():
    with pytest.raises(ConfigError, match="'softsign'"):
        activation_can_produce("softsign", [-1, 1])
