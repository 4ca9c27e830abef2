"""gan_lightning/modules/base.py: the contract callbacks and apps use (GenerativeModule)."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
import torch
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.modules.base import GenerativeModule, capture_rng, check_optimizer, restore_rng


class Decoder(GenerativeModule):
    """A conditional stand-in: a BatchNorm net whose running statistics must not move."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__(latent_dim=4, pixel_range=(-1, 1))
        self.net = nn.Sequential(nn.Linear(4 + 3, 16), nn.BatchNorm1d(16), nn.Tanh())

    def decode(self, z, labels=None):
        onehot = nn.functional.one_hot(labels, self.num_classes).float()
        return self.net(torch.cat([z, onehot], 1)).view(-1, 1, 4, 4)

    def sampling_nets(self):
        return [self.net]


def test_generate_runs_in_eval_mode_without_gradients_and_restores_the_mode():
    module = Decoder()
    before = module.net[1].running_mean.clone()
    images = module.generate(module.sample_latent(6))
    assert images.shape == (6, 1, 4, 4) and not images.requires_grad
    assert images.abs().max() <= 1
    assert torch.equal(module.net[1].running_mean, before)  # BatchNorm statistics untouched
    assert module.net.training  # back in train mode


def test_a_seeded_generator_gives_the_same_latents_and_labels():
    module = Decoder()
    first = module.sample_latent(5, torch.Generator().manual_seed(1))
    again = module.sample_latent(5, torch.Generator().manual_seed(1))
    assert first.shape == (5, 4) and torch.equal(first, again)
    labels = module.sample_labels(50, torch.Generator().manual_seed(1))
    assert set(labels.tolist()) <= {0, 1, 2}


def test_without_labels_a_conditional_model_draws_the_classes_in_turn():
    assert Decoder().default_labels(7).tolist() == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize("lr", [0, -1e-3, "fast"])
def test_an_optimizer_that_cannot_learn_is_refused_before_training(lr):
    with pytest.raises(ConfigError, match=r"model.optimizer_g.lr must be a number > 0"):
        check_optimizer("optimizer_g", functools.partial(torch.optim.Adam, lr=lr))
    check_optimizer("optimizer_g", functools.partial(torch.optim.Adam, lr=1e-4))


def test_random_streams_are_captured_and_restored():
    state = capture_rng()
    first = (torch.rand(3), np.random.rand(), random.random())
    restore_rng(state)
    again = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(again[0], first[0]) and again[1:] == first[1:]


def test_the_fast_attribute_path_stores_what_nn_modules_path_would():
    """Lightning's hook name and the batch counter skip nn.Module's checks: they land in the
    instance's plain attributes, exactly where ``nn.Module.__setattr__`` would put a str/int;
    anything else (a tensor, a bool) still takes nn.Module's path."""
    from tests.helpers import tiny_gan

    model = tiny_gan()
    model._current_fx_name = "training_step"
    model.batches_seen = 7
    assert model.__dict__["_current_fx_name"] == "training_step"
    assert model.__dict__["batches_seen"] == 7
    assert "batches_seen" not in model._buffers and "batches_seen" not in model._parameters
    model._current_fx_name = None
    assert model._current_fx_name is None
    model.batches_seen = torch.nn.Parameter(torch.zeros(()))  # not a plain value: nn.Module's
    assert "batches_seen" in model._parameters and "batches_seen" not in model.__dict__
