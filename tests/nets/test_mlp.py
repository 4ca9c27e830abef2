"""MLP nets: shapes, and the parameter counts of the seed reports' architectures."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.nets.mlp import MLPDiscriminator, MLPGenerator
from tests.conftest import compose_config


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("experiment", "g_params", "d_params"),
    [
        # seed 000: 100-128-256-512-784 (+ 2 BatchNorm1d), 784-512-256-128-1
        ("seed000_mlp_gan", 581_264, 566_273),
        # seed 003, Tables I and II: layer counts 25,856 + 131,584 + 525,312 + 803,600 and
        # 803,840 + 524,800 + 131,328 + 257
        ("seed003_mlp_gan", 1_486_352, 1_460_225),
        # seed 004: 64-256-256-784 and 784-256-256-1
        ("seed004_mlp_gan", 283_920, 267_009),
    ],
)
def test_seed_architectures_parameter_counts(experiment, g_params, d_params, tmp_path):
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    generator = instantiate(cfg.model.generator)
    discriminator = instantiate(cfg.model.discriminator)
    assert n_params(generator) == g_params
    assert n_params(discriminator) == d_params


def test_seed000_layer_layout():
    g = MLPGenerator(latent_dim=100, image_shape=(1, 28, 28), hidden_sizes=[128, 256, 512])
    kinds = [type(m).__name__ for m in g.hidden]
    # BatchNorm after the 2nd and 3rd hidden layers only, never on the raw latent.
    assert kinds == [
        "Linear",
        "LeakyReLU",
        "Linear",
        "BatchNorm1d",
        "LeakyReLU",
        "Linear",
        "BatchNorm1d",
        "LeakyReLU",
    ]
    bn = [m for m in g.modules() if isinstance(m, nn.BatchNorm1d)]
    assert all(m.eps == 1e-5 and m.momentum == 0.1 for m in bn)  # not the (n, 0.8) eps trap
    assert isinstance(g.out_act, nn.Tanh)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 8), (1,)])
def test_shapes_round_trip(shape):
    g = MLPGenerator(latent_dim=7, image_shape=shape, hidden_sizes=[16, 16])
    d = MLPDiscriminator(image_shape=shape, hidden_sizes=[16], dropout=0.5)
    z = torch.randn(5, 7)
    x = g(z)
    assert x.shape == (5, *shape)
    assert d(x).shape == (5,)


@pytest.mark.parametrize(("activation", "low", "high"), [("tanh", -1, 1), ("sigmoid", 0, 1)])
def test_output_activation_bounds(activation, low, high):
    g = MLPGenerator(
        latent_dim=4, image_shape=(1, 4, 4), hidden_sizes=[8], output_activation=activation
    )
    x = g(torch.randn(64, 4) * 100)
    assert x.min() >= low and x.max() <= high


def test_linear_output_is_unbounded():
    g = MLPGenerator(latent_dim=4, image_shape=(2,), hidden_sizes=[8], output_activation="linear")
    assert isinstance(g.out_act, nn.Identity)


def test_dropout_and_batchnorm_flags():
    d = MLPDiscriminator(image_shape=(1, 28, 28), hidden_sizes=[32, 16], dropout=0.3)
    assert sum(isinstance(m, nn.Dropout) for m in d.modules()) == 2
    assert not any(isinstance(m, nn.BatchNorm1d) for m in d.modules())
    g = MLPGenerator(latent_dim=4, image_shape=(4,), hidden_sizes=[8, 8, 8], batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in g.modules())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hidden_sizes": [0]},
        {"dropout": 1.0},
        {"activation": "swishy"},
        {"output_activation": "softmax"},
    ],
)
def test_bad_values_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        MLPGenerator(latent_dim=4, image_shape=(4,), **{"hidden_sizes": [8], **kwargs})
