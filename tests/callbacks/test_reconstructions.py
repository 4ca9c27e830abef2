"""ReconstructionGrid and LatentManifold: layout, fixed inputs, graceful skips."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gan_lightning.callbacks import LatentManifold, ReconstructionGrid
from gan_lightning.callbacks.manifold import latent_grid
from gan_lightning.errors import ConfigError
from gan_lightning.modules.base import GenerativeModule
from gan_lightning.modules.vae import VAE
from gan_lightning.nets.priors import NormalPrior, UniformPrior
from gan_lightning.nets.vae import MLPDecoder, MLPEncoder
from tests import helpers

SHAPE = (1, 8, 8)


class RampModule(GenerativeModule):
    """A 'generator' whose image brightness is sigmoid(z1) on the left half and sigmoid(z2) on
    the right half, so a grid's layout can be read back from its pixels."""

    def __init__(self, latent_dim: int = 2, prior=None) -> None:
        super().__init__(latent_dim, (0.0, 1.0), prior)
        self.net = nn.Identity()

    def decode(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        left = torch.sigmoid(z[:, 0]).view(-1, 1, 1, 1).expand(-1, 1, 8, 4)
        right = torch.sigmoid(z[:, 1 % z.shape[1]]).view(-1, 1, 1, 1).expand(-1, 1, 8, 4)
        return torch.cat([left, right], dim=3)  # (N, 1, 8, 8)

    def sampling_nets(self) -> list[nn.Module]:
        return [self.net]


def fake_trainer(epoch: int = 0):
    return helpers.fake_trainer(epoch, datamodule=None)


def tiny_vae() -> VAE:
    torch.manual_seed(0)
    return VAE(
        MLPEncoder(SHAPE, 2, hidden_sizes=[16]),
        MLPDecoder(2, SHAPE, hidden_sizes=[16]),
        optimizer=lambda params: torch.optim.Adam(params, 1e-3),
    )


# --------------------------------------------------------------------------- manifold
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


# --------------------------------------------------------------------------- reconstructions
def test_reconstruction_grid_pairs_fixed_validation_images(tmp_path: Path):
    torch.manual_seed(0)
    train = TensorDataset(torch.rand(64, *SHAPE).round())
    val = TensorDataset(torch.rand(40, *SHAPE).round())
    callback = ReconstructionGrid(dirpath=str(tmp_path), num_images=25)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        callbacks=[callback],
    )
    trainer.fit(tiny_vae(), DataLoader(train, batch_size=16), DataLoader(val, batch_size=32))
    saved = sorted(tmp_path.glob("epoch_*.png"))
    assert [p.name[:9] for p in saved] == ["epoch_000", "epoch_001"]
    torch.testing.assert_close(callback.images, val.tensors[0][:25])  # first val images, fixed
    width, height = Image.open(saved[0]).size
    grid = 5 * (8 + 2) + 2  # 5 tiles of 8 px with make_grid's 2 px padding
    assert (width, height) == (2 * grid + 4 * 2 + 2, grid)  # originals | gap | reconstructions
    assert callback.state_dict()["images"] is callback.images


def test_reconstruction_grid_render_puts_originals_left(tmp_path):
    vae = tiny_vae()
    images = torch.zeros(4, *SHAPE)  # black originals; reconstructions are ~grey
    grid = ReconstructionGrid(num_images=4, padding=0).render(vae, images)
    assert grid.shape == (3, 16, 16 + 2 + 16)
    assert grid[:, :, :16].max() == 0 and grid[:, :, 18:].mean() > 0.2


def test_reconstruction_grid_skips_models_without_reconstruct(tmp_path, caplog):
    callback = ReconstructionGrid(dirpath=str(tmp_path))
    with caplog.at_level(logging.INFO, logger="gan_lightning.callbacks.base"):
        for epoch in range(2):
            callback.on_train_epoch_end(fake_trainer(epoch), RampModule())
    assert not any(tmp_path.iterdir())
    assert sum("no reconstruct()" in r.message for r in caplog.records) == 1
    with pytest.raises(ConfigError):
        ReconstructionGrid(num_images=0)
