"""TrainingCurves: the values it collects (per step, per epoch, late-logged FID) and its figures."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from gan_lightning.callbacks import TrainingCurves
from gan_lightning.errors import ConfigError
from tests.helpers import ScriptedGAN

PANEL = (150, 100)  # figsize (3, 2) inches at 50 dpi


class ScriptedVAE(ScriptedGAN):
    def training_step(self, batch, batch_idx):
        self.log_dict(
            {"train/loss": torch.tensor(10.0 - self.current_epoch), "train/kl": torch.tensor(1.0)},
            on_step=True,
            on_epoch=True,
        )

    def validation_step(self, batch, batch_idx):
        self.log_dict(
            {"val/loss": torch.tensor(11.0 - self.current_epoch), "val/kl": torch.tensor(1.5)}
        )

    def on_validation_epoch_end(self):
        pass


class LateFid(pl.Callback):
    """A metrics callback that logs in on_train_epoch_end, after TrainingCurves ran."""

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.log("val/fid_late", 50.0 + trainer.current_epoch)


def fit(module, curves, *extra, epochs=3):
    trainer = pl.Trainer(
        max_epochs=epochs,
        limit_train_batches=4,
        log_every_n_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        accelerator="cpu",
        callbacks=[curves, *extra],
    )
    trainer.fit(module)
    return trainer


def values(series):
    return [(x, round(float(v), 4)) for x, v in series]


def test_gan_curves_collect_the_logged_values(tmp_path: Path):
    curves = TrainingCurves(dirpath=str(tmp_path), figsize=(3, 2), dpi=50)
    fit(ScriptedGAN(), curves, LateFid())
    # Every log_every_n_steps=2 batches: (batches done, value); epoch e, batch i: 1 + e + i/10.
    assert values(curves.steps["train/d_loss"]) == [
        (2, 1.1),
        (4, 1.3),
        (6, 2.1),
        (8, 2.3),
        (10, 3.1),
        (12, 3.3),
    ]
    assert values(curves.epochs["train/d_loss"]) == [(0, 1.15), (1, 2.15), (2, 3.15)]
    assert values(curves.epochs["val/d_loss"]) == [(0, 5.0), (1, 6.0), (2, 7.0)]
    assert values(curves.epochs["val/fid_fake"]) == [(0, 100.0), (1, 90.0), (2, 80.0)]
    # Logged after this callback's hook: still attributed to the epoch that produced it.
    assert values(curves.epochs["val/fid_late"]) == [(0, 50.0), (1, 51.0), (2, 52.0)]
    assert curves.epoch_ends == {0: 4, 1: 8, 2: 12}

    sizes = {p.name: Image.open(p).size for p in tmp_path.iterdir()}
    assert sizes == {
        "losses.png": PANEL,  # one panel: D, G and D + G
        "train_val.png": (2 * PANEL[0], PANEL[1]),  # d_loss, g_loss
        "fid_kid.png": (3 * PANEL[0], PANEL[1]),  # fid_fake, fid_late, kid_mean_fake (+ std band)
    }


def test_vae_curves_are_train_vs_val_of_its_terms(tmp_path: Path):
    curves = TrainingCurves(dirpath=str(tmp_path), figsize=(3, 2), dpi=50)
    fit(ScriptedVAE(), curves, epochs=2)
    assert set(curves.steps) == {"train/loss"}  # the auto choice without d_loss/g_loss
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.png", "train_val.png"]
    assert Image.open(tmp_path / "train_val.png").size == (2 * PANEL[0], PANEL[1])  # kl, loss


def test_every_n_epochs_redraws_and_bad_values_fail(caplog, tmp_path: Path):
    curves = TrainingCurves(dirpath=str(tmp_path), every_n_epochs=1, figsize=(3, 2), dpi=50)
    with caplog.at_level(logging.INFO, logger="gan_lightning.callbacks.base"):
        fit(ScriptedGAN(), curves, epochs=2)
    saved = [r.message for r in caplog.records if r.message.endswith("losses.png")]
    assert len(saved) == 3  # after each epoch, then once more at the end
    with pytest.raises(ConfigError):
        TrainingCurves(figsize=(3,))
