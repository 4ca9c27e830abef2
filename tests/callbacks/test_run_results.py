"""RunResults: results.json after every validation and at the end (or failure) of a run."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl

from gan_lightning.callbacks import RunResults
from tests.helpers import ScriptedGAN


class ScoredEveryOtherEpoch(ScriptedGAN):
    """FID (falling) and IS (rising) on epochs 0 and 2 only, like metrics.every_n_epochs=2."""

    fail_at_epoch: int | None = None

    def training_step(self, batch, batch_idx):
        if self.current_epoch == self.fail_at_epoch:
            raise RuntimeError("diverged")
        return super().training_step(batch, batch_idx)

    def on_validation_epoch_end(self):
        epoch = self.current_epoch
        if not self.trainer.sanity_checking and epoch % 2 == 0:
            self.log_dict({"val/fid_fake": 100.0 - 10 * epoch, "val/is_fake": 1.0 + epoch})


def fit(module, path, epochs=3, ckpt_path=None, save=None):
    trainer = pl.Trainer(
        max_epochs=epochs,
        limit_train_batches=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,  # never recorded
        accelerator="cpu",
        callbacks=[RunResults(str(path))],
    )
    trainer.fit(module, ckpt_path=ckpt_path)
    if save is not None:
        trainer.save_checkpoint(save)
    return json.loads(path.read_text())


def test_results_of_a_finished_run(tmp_path):
    results = fit(ScoredEveryOtherEpoch(), tmp_path / "results.json")
    assert results["status"] == "finished" and results["steps"] == 12
    assert [(e["step"], e["epoch"]) for e in results["history"]] == [(4, 0), (8, 1), (12, 2)]
    # A score kept from an earlier evaluation is not recorded again (epoch 1 had no FID).
    assert [e["metrics"].get("val/fid_fake") for e in results["history"]] == [100.0, None, 80.0]
    assert results["final"]["val/fid_fake"] == 80.0 and results["best"]["val/fid_fake"] == 80.0
    assert results["final"]["val/is_fake"] == 3.0 and results["best"]["val/is_fake"] == 3.0
    assert results["final"]["val/d_loss"] == 7.0 and results["best"]["val/d_loss"] == 5.0
    assert results["wall_time_s"] > 0 and results["wandb"] is None


def test_a_failed_run_keeps_its_last_scores(tmp_path):
    module = ScoredEveryOtherEpoch()
    module.fail_at_epoch = 1
    with pytest.raises(RuntimeError, match="diverged"):
        fit(module, tmp_path / "results.json")
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "failed" and results["error"] == "RuntimeError: diverged"
    assert results["final"]["val/fid_fake"] == 100.0 and results["steps"] == 4


def test_best_ignores_nan_and_spreads():
    from gan_lightning.callbacks.run_results import best_values

    history = [
        {"metrics": {"val/fid_x": float("nan"), "val/kid_std_x": 0.1}},
        {"metrics": {"val/fid_x": 50.0, "val/classes_covered_x": 7.0}},
        {"metrics": {"val/fid_x": 60.0, "val/classes_covered_x": 9.0}},
    ]
    assert best_values(history) == {"val/fid_x": 50.0, "val/classes_covered_x": 9.0}


def test_a_resumed_run_reports_the_whole_run(tmp_path):
    path, ckpt = tmp_path / "results.json", tmp_path / "last.ckpt"
    first = fit(ScoredEveryOtherEpoch(), path, epochs=2, save=ckpt)
    resumed = fit(ScoredEveryOtherEpoch(), path, epochs=3, ckpt_path=str(ckpt))
    assert [e["epoch"] for e in resumed["history"]] == [0, 1, 2]
    assert resumed["history"][:2] == first["history"]
    assert resumed["best"]["val/fid_fake"] == 80.0
    assert resumed["wall_time_s"] > first["wall_time_s"]
