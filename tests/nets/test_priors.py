"""gan_lightning/nets/priors.py: latent priors a config can swap."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.nets.priors import NormalPrior, UniformPrior


def test_uniform_prior_stays_in_its_interval_and_fills_it():
    z = UniformPrior(-8, 8).sample((4000, 1), generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 1)
    assert -8 <= float(z.min()) < -7.5 and 7.5 < float(z.max()) <= 8


def test_normal_prior_is_standard_normal():
    z = NormalPrior().sample((20000, 2), generator=torch.Generator().manual_seed(0))
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05


def test_a_seeded_generator_repeats_the_draw():
    for prior in (NormalPrior(), UniformPrior()):
        first = prior.sample((3, 4), generator=torch.Generator().manual_seed(5))
        again = prior.sample((3, 4), generator=torch.Generator().manual_seed(5))
        assert torch.equal(first, again)


def test_an_empty_interval_is_a_config_error():
    with pytest.raises(ConfigError, match="high > low; got low=1.0, high=1.0"):
        UniformPrior(1.0, 1.0)
