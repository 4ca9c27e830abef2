"""gan_lightning/callbacks/base.py: when a picture callback draws, what its files are called,
and what it does when a picture does not apply."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gan_lightning.callbacks.base import Picture, PictureCallback, Skip, frames, picture_path
from gan_lightning.errors import ConfigError
from tests.helpers import fake_trainer


class Grey(PictureCallback):
    """Draws a grey square; ``skip=True`` plays a picture that does not fit the model."""

    config_key = "grey"

    def __init__(self, *args, skip: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skip = skip

    def pictures(self, trainer, module):
        if self.skip:
            raise Skip("not for this model")
        return [Picture("grey", torch.full((1, 4, 4), 0.5))]


def train(callback: PictureCallback, epochs: int, batches_per_epoch: int) -> list[str]:
    """Call the hooks as a Trainer would; returns the file names written, in order."""
    module = SimpleNamespace(batches_seen=0)
    callback.on_train_start(fake_trainer(0), module)
    for epoch in range(epochs):
        for _ in range(batches_per_epoch):
            module.batches_seen += 1
            callback.on_train_batch_end(fake_trainer(epoch), module)
        callback.on_train_epoch_end(fake_trainer(epoch), module)
    callback.on_train_end(fake_trainer(epochs - 1), module)
    return [path.name for _, path in frames(callback.dirpath, by="step")]


def test_every_n_epochs_and_once_more_only_if_the_last_drawing_is_stale(tmp_path: Path):
    names = train(Grey(tmp_path / "a", every_n_epochs=2), epochs=3, batches_per_epoch=5)
    # epoch 1 (every 2nd), then the final weights (batch 15), which epoch 1 did not show
    assert names == ["epoch_001_step_0000010.png", "epoch_002_step_0000015.png"]
    names = train(Grey(tmp_path / "b", every_n_epochs=1), epochs=2, batches_per_epoch=5)
    assert names == ["epoch_000_step_0000005.png", "epoch_001_step_0000010.png"]


def test_every_n_steps_counts_real_batches_from_step_0(tmp_path: Path):
    callback = Grey(tmp_path, every_n_epochs=0, every_n_steps=4, at_train_end=False)
    names = train(callback, epochs=2, batches_per_epoch=5)
    assert [int(name.split("_")[3].split(".")[0]) for name in names] == [0, 4, 8]


def test_a_picture_that_does_not_apply_is_skipped_and_said_once(tmp_path: Path, caplog):
    with caplog.at_level(logging.INFO):
        assert train(Grey(tmp_path, skip=True), epochs=3, batches_per_epoch=2) == []
    assert sum("not for this model" in r.getMessage() for r in caplog.records) == 1


def test_settings_that_draw_nothing_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="callbacks.grey: every_n_epochs and every_n_steps"):
        Grey(tmp_path, every_n_epochs=-1)
    with pytest.raises(ConfigError, match="disable it with callbacks.grey=null"):
        Grey(tmp_path, every_n_epochs=0, every_n_steps=0, at_train_end=False)


def test_file_names_sort_in_training_order(tmp_path: Path):
    assert picture_path(tmp_path, epoch=4, step=4295).name == "epoch_004_step_0004295.png"
    assert picture_path(tmp_path, epoch=0, tag="linear").name == "epoch_000_linear.png"
    for epoch in (999, 1000, 2):
        picture_path(tmp_path, epoch=epoch).touch()
    assert [n for n, _ in frames(tmp_path)] == [2, 999, 1000]
