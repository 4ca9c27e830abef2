"""LatentInterpolation: grid layout, fixed pairs, which methods for which prior, when it draws."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gan_lightning.callbacks import LatentInterpolation
from gan_lightning.callbacks.interpolation import interpolation_grid
from gan_lightning.errors import ConfigError
from gan_lightning.modules.base import GenerativeModule
from gan_lightning.nets.priors import NormalPrior, UniformPrior
from tests.helpers import fake_trainer


class LinearImages(GenerativeModule):
    """A fixed linear 'generator' z -> tanh(Wz) as 1x28x28 images in [-1, 1]."""

    def __init__(self, latent_dim: int = 6, prior=None) -> None:
        super().__init__(latent_dim, (-1.0, 1.0), prior)
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(latent_dim, 28 * 28), nn.Tanh())

    def decode(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        return self.net(z).view(-1, 1, 28, 28)

    def sampling_nets(self) -> list[nn.Module]:
        return [self.net]


def test_rows_are_pairs_and_columns_are_steps(tmp_path: Path):
    callback = LatentInterpolation(dirpath=str(tmp_path), num_pairs=3, num_steps=5)
    module = LinearImages()
    callback.on_train_epoch_end(fake_trainer(), module)  # every_n_epochs=0: not yet
    assert not any(tmp_path.iterdir())
    callback.on_train_end(fake_trainer(), module)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["epoch_000_linear.png", "epoch_000_spherical.png"]
    image = Image.open(tmp_path / "epoch_000_linear.png")
    assert image.size == (5 * 30 + 2, 3 * 30 + 2)  # 5 columns, 3 rows of 28 px + padding 2


def test_row_ends_are_the_fixed_latents(tmp_path: Path):
    module = LinearImages()
    callback = LatentInterpolation(dirpath=str(tmp_path), num_pairs=2, num_steps=4)
    grid = callback.render(module)["spherical"]  # (3, H, W)
    z0, z1 = callback.state_dict()["pairs"]  # what a checkpoint keeps
    first = (module.generate(z0[:1])[0, 0] + 1) / 2  # (28, 28) in [0, 1]
    last = (module.generate(z1[1:])[0, 0] + 1) / 2
    torch.testing.assert_close(grid[0, 2:30, 2:30], first)  # row 0, column 0
    torch.testing.assert_close(grid[0, 32:60, 92:120], last, atol=1e-5, rtol=1e-5)  # row 1, col 3
    torch.testing.assert_close(grid, interpolation_grid(module, z0, z1, 4, "spherical"))
    # Same seed, same rows; a resumed run restores them from the checkpoint.
    again = LatentInterpolation(dirpath=str(tmp_path), num_pairs=2, num_steps=4)
    torch.testing.assert_close(again.render(module)["spherical"], grid)
    restored = LatentInterpolation(dirpath=str(tmp_path), num_pairs=2, num_steps=4, seed=7)
    restored.load_state_dict(callback.state_dict())
    torch.testing.assert_close(restored.render(module)["spherical"], grid)


def test_uniform_prior_gets_linear_only_and_every_n_epochs(tmp_path: Path):
    module = LinearImages(prior=UniformPrior(-1, 1))
    callback = LatentInterpolation(
        dirpath=str(tmp_path), num_pairs=1, num_steps=3, every_n_epochs=2
    )
    for epoch in range(4):
        callback.on_train_epoch_end(fake_trainer(epoch), module)
    callback.on_train_end(fake_trainer(4), module)  # epoch 3 was drawn already
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch_001_linear.png",
        "epoch_003_linear.png",
    ]
    strip = np.asarray(Image.open(tmp_path / "epoch_003_linear.png"))
    assert strip.shape[:2] == (32, 3 * 30 + 2)


def test_bad_settings_fail_before_training():
    with pytest.raises(ConfigError, match="num_steps"):
        LatentInterpolation(num_steps=1)
    callback = LatentInterpolation(methods=["spherical"])
    with pytest.raises(ConfigError, match="normal prior"):
        callback.setup(None, LinearImages(prior=UniformPrior(-1, 1)), "fit")
    callback.setup(None, LinearImages(prior=NormalPrior()), "fit")


class Points(LinearImages):
    """1-D samples (the Gaussian toy): nothing to draw."""

    def decode(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        return z[:, :1]


def test_non_image_models_are_skipped(tmp_path: Path, caplog):
    callback = LatentInterpolation(dirpath=str(tmp_path / "i"))
    with caplog.at_level(logging.INFO):
        callback.on_train_end(fake_trainer(), Points())
    assert not (tmp_path / "i").exists() and "not images" in caplog.text
