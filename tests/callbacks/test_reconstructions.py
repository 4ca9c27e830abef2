"""gan_lightning/callbacks/reconstructions.py: ReconstructionGrid layout, fixed inputs, graceful
skips."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from gan_lightning.callbacks import ReconstructionGrid
from gan_lightning.errors import ConfigError
from gan_lightning.modules.vae import VAE
from gan_lightning.nets.vae import MLPDecoder, MLPEncoder
from tests import helpers
from tests.helpers import RampModule

SHAPE = (1, 8, 8)


def fake_trainer(epoch: int = 0):
    return helpers.fake_trainer(epoch, datamodule=None)


def tiny_vae() -> VAE:
    torch.manual_seed(0)
    return VAE(
        MLPEncoder(SHAPE, 2, hidden_sizes=[16]),
        MLPDecoder(2, SHAPE, hidden_sizes=[16]),
        optimizer=lambda params: torch.optim.Adam(params, 1e-3),
    )


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
