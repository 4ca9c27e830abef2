"""gan_lightning/callbacks/manifold.py: the latent grid follows the prior, the PNG's layout can
be read back from its pixels, and other latent sizes are skipped with one line."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lightning.callbacks import LatentManifold
from gan_lightning.callbacks.manifold import latent_grid
from gan_lightning.errors import ConfigError
from gan_lightning.nets.priors import NormalPrior, UniformPrior
from tests import helpers
from tests.helpers import RampModule


def fake_trainer(epoch: int = 0):
    return helpers.fake_trainer(epoch, datamodule=None)


def test_normal_grid_uses_gaussian_quantiles():
    z = latent_grid(NormalPrior(), 10)
    assert z.shape == (100, 2)
    axis = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, 10))
    torch.testing.assert_close(z[:10, 0], axis)  # z1 grows left to right along a row
    torch.testing.assert_close(z[::10, 1], axis.flip(0))  # z2 falls from top row to bottom
    assert z[0, 0].item() == pytest.approx(-1.6449, abs=1e-3)


def test_uniform_grid_spans_the_prior_evenly():
    z = latent_grid(UniformPrior(-2.0, 2.0), 4)
    torch.testing.assert_close(z[:4, 0], torch.tensor([-1.5, -0.5, 0.5, 1.5]))
    assert latent_grid(object(), 4) is None


def test_manifold_png_layout(tmp_path: Path):
    callback = LatentManifold(dirpath=str(tmp_path), grid_size=10)
    callback.on_train_epoch_end(fake_trainer(), RampModule())
    [path] = tmp_path.glob("epoch_000_step_*.png")
    image = torch.from_numpy(np.array(Image.open(path).convert("L"))).float()
    assert image.shape == (80, 80)  # 10 x 10 tiles of 8x8, no padding
    top_left, top_right, bottom_left = image[0, 0], image[0, 72], image[72, 0]
    assert top_right > top_left  # z1 increases to the right (left half of each tile)
    assert image[0, 4] > image[72, 4]  # z2 decreases downwards (right half of each tile)
    assert bottom_left == top_left  # z1 is constant down a column


def test_manifold_skips_other_latent_sizes_with_one_info_line(tmp_path, caplog):
    callback = LatentManifold(dirpath=str(tmp_path))
    with caplog.at_level(logging.INFO, logger="gan_lightning.callbacks.base"):
        for epoch in range(3):
            callback.on_train_epoch_end(fake_trainer(epoch), RampModule(latent_dim=3))
    assert not any(tmp_path.iterdir())
    assert sum("skipping" in r.message for r in caplog.records) == 1


def test_manifold_with_uniform_prior_and_bad_args(tmp_path):
    callback = LatentManifold(dirpath=str(tmp_path), grid_size=3, every_n_epochs=2)
    module = RampModule(prior=UniformPrior(-1, 1))
    callback.on_train_epoch_end(fake_trainer(0), module)  # epoch 1 of 2: nothing
    callback.on_train_epoch_end(fake_trainer(1), module)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_001_step_0000000.png"]
    with pytest.raises(ConfigError):
        LatentManifold(grid_size=1)
