"""Progress: rich bar at a terminal, plain lines otherwise, nothing when disabled."""

from __future__ import annotations

import io
import logging

import pytest
import pytorch_lightning as pl

from gan_lightning.callbacks.progress import (
    LogLinesProgressBar,
    MetricsRichProgressBar,
    progress_bar,
    short_metrics,
)
from gan_lightning.errors import ConfigError
from tests.helpers import ScriptedGAN, tensor_loader, tiny_gan


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_factory_picks_by_terminal():
    assert isinstance(progress_bar(stream=Terminal()), MetricsRichProgressBar)
    assert isinstance(progress_bar(stream=io.StringIO()), LogLinesProgressBar)  # CI, a pipe, a file
    assert isinstance(progress_bar(style="lines", stream=Terminal()), LogLinesProgressBar)
    assert progress_bar(enabled=False) is None  # trainer.enable_progress_bar=false
    with pytest.raises(ConfigError, match="style"):
        progress_bar(style="fancy")


def test_short_names_in_the_bar():
    metrics = {
        "v_num": 3,
        "train/d_loss_step": 1.0,
        "train/d_loss_epoch": 0.9,
        "val/fid_digits": 5.0,
    }
    assert short_metrics(metrics) == {"d_loss": 1.0, "val/fid_digits": 5.0}


def tiny_trainer(bar: pl.Callback, max_epochs: int) -> pl.Trainer:
    """4 batches an epoch, nothing but the progress callback under test."""
    return pl.Trainer(
        max_epochs=max_epochs,
        limit_train_batches=4,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
        callbacks=[bar],
    )


def test_plain_lines_during_training(caplog):
    bar = LogLinesProgressBar(log_every_n_batches=2)
    trainer = tiny_trainer(bar, max_epochs=2)
    with caplog.at_level(logging.INFO, logger="gan_lightning.callbacks.progress"):
        trainer.fit(ScriptedGAN())
    lines = [r.getMessage() for r in caplog.records if r.name == "gan_lightning.callbacks.progress"]
    assert len(lines) == 6  # batches 2 and 4 plus the epoch summary, two epochs
    assert lines[0].startswith("epoch 0/1 | batch 2/4 (50%)")
    assert "d_loss=1.1" in lines[0] and "g_loss=2" in lines[0]
    assert lines[2].startswith("epoch 0/1 done in")
    assert "train d_loss=1.15" in lines[2] and "val/d_loss=5" in lines[2]
    assert all("\r" not in line for line in lines)
    assert caplog.text.count("epoch 1/1") == 3


def test_rich_bar_shows_short_loss_names():
    bar = MetricsRichProgressBar(refresh_rate=2)
    trainer = tiny_trainer(bar, max_epochs=1)
    module = ScriptedGAN()
    trainer.fit(module)
    shown = bar.get_metrics(trainer, module)
    assert {"d_loss", "g_loss"} <= set(shown) and "v_num" not in shown
    assert not any(k.endswith(("_step", "_epoch")) for k in shown)


def test_rich_bar_reads_metrics_back_only_every_refresh_rate_batches(monkeypatch):
    """Each read converts every logged tensor to a number (a host sync): not on every batch."""
    from pytorch_lightning.callbacks import RichProgressBar

    reads = []
    parent = RichProgressBar.get_metrics

    def counting(self, trainer, pl_module):
        if trainer.training:
            reads.append(pl_module.batches_seen)
        return parent(self, trainer, pl_module)

    monkeypatch.setattr(RichProgressBar, "get_metrics", counting)
    bar = MetricsRichProgressBar(refresh_rate=2)
    tiny_trainer(bar, max_epochs=2).fit(ScriptedGAN())
    assert reads and all(done % 2 == 0 for done in reads[1:])  # the first read fills the bar
    assert len(reads) < 8


def test_a_run_ending_inside_an_epoch_shows_that_epochs_real_length(caplog):
    """max_steps counts optimizer steps (2 per GAN batch): the last epoch's total is the
    real batches left (6 of 8 -> 4 then 2), not a mix of the two units."""
    model = tiny_gan()
    bar = LogLinesProgressBar(log_every_n_batches=2)
    trainer = pl.Trainer(
        max_epochs=-1,
        max_steps=model.optimizer_steps_for(6),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
        callbacks=[bar],
    )
    with caplog.at_level(logging.INFO, logger="gan_lightning.callbacks.progress"):
        trainer.fit(model, train_dataloaders=tensor_loader(n=16, batch_size=4))
    lines = [r.getMessage() for r in caplog.records if r.name == "gan_lightning.callbacks.progress"]
    batches = [line.split(" | ")[1] for line in lines if " | batch " in line]
    assert batches == ["batch 2/4 (50%)", "batch 4/4 (100%)", "batch 2/2 (100%)"]
