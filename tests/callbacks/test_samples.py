"""SampleGrid: the fixed-noise grid's size, its fixed latents, and graceful skipping."""

from __future__ import annotations

import logging

import torch
from PIL import Image

from gan_lightning.callbacks.samples import SampleGrid
from gan_lightning.nets.mlp import MLPGenerator
from tests.helpers import fake_trainer, tiny_gan


def mnist_like_gan():
    return tiny_gan(image_shape=(1, 28, 28))


def test_grid_is_8x8_of_28px_with_padding(tmp_path):
    callback = SampleGrid(dirpath=str(tmp_path), num_samples=64, padding=2)
    callback.on_train_epoch_end(fake_trainer(), mnist_like_gan())
    (png,) = tmp_path.glob("epoch_000_step_*.png")
    with Image.open(png) as image:
        assert image.size == (8 * 30 + 2, 8 * 30 + 2)  # 242 x 242


def test_the_noise_is_fixed_across_epochs_and_checkpoints(tmp_path):
    model = mnist_like_gan()
    callback = SampleGrid(dirpath=str(tmp_path), num_samples=4)
    first = callback.render(model)
    assert torch.equal(callback.render(model), first)  # same z, eval-mode G: same grid
    restored = SampleGrid(dirpath=str(tmp_path), num_samples=4, seed=999)
    restored.load_state_dict(callback.state_dict())
    assert torch.equal(restored.render(model), first)


def test_non_image_models_are_skipped_with_one_line(tmp_path, caplog):
    model = tiny_gan()
    model.generator = MLPGenerator(
        latent_dim=4, image_shape=(1,), hidden_sizes=[4], output_activation="linear"
    )
    callback = SampleGrid(dirpath=str(tmp_path / "grids"))
    with caplog.at_level(logging.INFO):
        callback.on_train_epoch_end(fake_trainer(), model)
        callback.on_train_epoch_end(fake_trainer(1), model)
    assert not (tmp_path / "grids").exists()
    assert caplog.text.count("SampleGrid: skipping (the model's samples are not images") == 1
