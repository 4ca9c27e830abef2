"""Every run ends by scoring its final weights (GenerativeMetrics.score_final): after
``max_steps`` mid-epoch, after an exception or a stop signal, never twice for the same
weights; results.json "final", the loggers, trainer.callback_metrics and train.run's return
value all hold that score."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
from hydra.utils import instantiate
from pytorch_lightning.utilities.exceptions import SIGTERMException

from gan_lightning.metrics.callback import GenerativeMetrics
from gan_lightning.runtime.checkpoints import load_module
from gan_lightning.train import build, run
from tests.conftest import REPO, compose_config
from tests.metrics.conftest import logged_scores
from tests.metrics.helpers import metrics_overrides, random_classifier_file, smoke_with_metrics


def tiny_metrics_config(mnist_dir: Path, out: Path, *extra: str):
    """The default MLP GAN (16-unit nets) on real MNIST, scored with an untrained classifier
    (a fixed feature map) on 200 samples, CSV logger; an epoch of 10 batches."""
    classifier = random_classifier_file(out / "classifier.pt")
    overrides = [o for o in smoke_with_metrics() if not o.startswith(("trainer.max", "logger="))]
    return compose_config(
        [
            *overrides,
            "trainer.limit_train_batches=10",
            "model.generator.hidden_sizes=[16]",
            "model.discriminator.hidden_sizes=[16]",
            "data.batch_size=16",
            "num_threads=1",
            "logger=csv",
            f"data.data_dir={mnist_dir}",
            *metrics_overrides(classifier),
            *extra,
        ],
        out,
    )


def metrics_callback(trainer: pl.Trainer) -> GenerativeMetrics:
    [callback] = [c for c in trainer.callbacks if isinstance(c, GenerativeMetrics)]
    return callback


@pytest.fixture
def count_scoring(monkeypatch) -> list[int]:
    """How many times the weights were scored (GenerativeMetrics.score calls, one per rank)."""
    calls: list[int] = []
    original = GenerativeMetrics.score

    def counted(self, module, *args, **kwargs):
        calls.append(int(module.batches_seen))
        return original(self, module, *args, **kwargs)

    monkeypatch.setattr(GenerativeMetrics, "score", counted)
    return calls


def test_a_run_stopped_by_max_steps_mid_epoch_scores_its_final_weights(
    mnist_dir, tmp_path, count_scoring
):
    cfg = tiny_metrics_config(
        mnist_dir,
        tmp_path,
        "trainer.max_steps=4",
        "trainer.max_epochs=3",
        "callbacks.model_checkpoint.every_n_train_steps=3",  # last.ckpt at batch 3, then 4
    )
    returned = run(cfg)  # 4 of the epoch's 10 batches: no periodic evaluation ran
    assert count_scoring == [4]

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "finished" and results["steps"] == 4
    [entry] = results["history"]
    assert entry["step"] == 4 and results["final"] == entry["metrics"]
    final = results["final"]["val/fid_digits"]
    assert returned["val/fid_digits"] == pytest.approx(final, rel=1e-6)  # the Optuna objective
    rows = logged_scores(tmp_path / "csv" / "version_0" / "metrics.csv")
    assert [r["step"] for r in rows] == [4] and rows[0]["val/fid_digits"] == pytest.approx(final)

    # last.ckpt holds the weights training ended with; scored afresh they give that number.
    module, _ = load_module(tmp_path / "checkpoints" / "last.ckpt")
    assert module.batches_seen == 4
    scorer = instantiate(cfg.metrics)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    scorer.prepare(datamodule)
    assert scorer.score(module, datamodule)["fid_digits"] == pytest.approx(final, rel=1e-5)


def test_the_final_weights_are_not_scored_twice(mnist_dir, tmp_path, count_scoring):
    cfg = tiny_metrics_config(mnist_dir, tmp_path, "trainer.max_epochs=1", "trainer.max_steps=-1")
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule)
    assert count_scoring == [10]  # the epoch-end evaluation saw the final weights: not again
    callback = metrics_callback(trainer)
    assert callback.score_final(trainer, model) == callback.last_scores  # asked again: same
    assert count_scoring == [10]
    results = json.loads((tmp_path / "results.json").read_text())
    [entry] = results["history"]  # one evaluation (with the validation losses)
    assert entry["step"] == 10 and results["final"] == entry["metrics"]
    for name, value in callback.last_scores.items():
        assert results["final"][name] == pytest.approx(value, rel=1e-6), name


class StopAt(pl.Callback):
    """Stops training at batch ``batch`` (0-based) with an error or a real SIGUSR1."""

    def __init__(self, batch: int, how: str) -> None:
        self.batch, self.how = batch, how

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.batch and self.how == "error":
            raise RuntimeError("stopped by the test")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx + 1 == self.batch and self.how == "sigusr1":
            signal.raise_signal(signal.SIGUSR1)  # the checkpoint callback stops after this batch


@pytest.mark.parametrize(
    ("stop_at", "how", "scored"),
    [(3, "error", [3]), (0, "error", []), (3, "sigusr1", [3])],
    ids=["error-after-3-batches", "error-before-any-batch", "sigusr1-after-3-batches"],
)
def test_a_stopped_run_scores_what_it_trained(
    mnist_dir, tmp_path, count_scoring, stop_at, how, scored
):
    cfg = tiny_metrics_config(mnist_dir, tmp_path, "trainer.max_epochs=1", "trainer.max_steps=-1")
    datamodule, model, trainer = build(cfg)
    trainer.callbacks.insert(0, StopAt(stop_at, how))
    handler = signal.getsignal(signal.SIGUSR1)
    try:
        with pytest.raises(SIGTERMException if how == "sigusr1" else RuntimeError):
            trainer.fit(model, datamodule=datamodule)
    finally:
        signal.signal(signal.SIGUSR1, handler)
    assert count_scoring == scored
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "failed" and results["steps"] == stop_at
    if scored:
        [entry] = results["history"]
        assert entry["step"] == stop_at and results["final"] == entry["metrics"]
    else:
        assert results["final"] == {}
    if how == "sigusr1":  # the stop's checkpoint was written, and holds the scored weights
        module, _ = load_module(tmp_path / "checkpoints" / "last.ckpt")
        assert module.batches_seen == stop_at


@pytest.mark.slow
def test_under_ddp_every_rank_scores_the_final_weights(mnist_dir, tmp_path):
    """Two CPU processes stop on max_steps mid-epoch: both ranks take part in the final
    scoring (a rank left out would hang its collectives), and the score is the one a single
    process gives the saved final weights."""
    classifier = random_classifier_file(tmp_path / "classifier.pt")
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "train.py",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_steps=4",
        "trainer.max_epochs=-1",
        "trainer.limit_train_batches=10",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_model_summary=false",
        "trainer.enable_progress_bar=false",
        "model.generator.hidden_sizes=[16]",
        "model.discriminator.hidden_sizes=[16]",
        "data.batch_size=16",
        "num_threads=1",
        "logger=none",
        f"paths.data_dir={mnist_dir}",
        f"hydra.run.dir={run_dir}",
        *metrics_overrides(classifier),
    ]
    env = {**os.environ, "WANDB_MODE": "offline"}
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    [entry] = results["history"]
    assert entry["step"] == 4 and results["final"] == entry["metrics"]

    module, config = load_module(run_dir / "checkpoints" / "last.ckpt")
    assert module.batches_seen == 4
    scorer = instantiate(config["metrics"])
    datamodule = instantiate(config["data"])
    datamodule.setup("fit")
    scorer.prepare(datamodule)
    single = scorer.score(module, datamodule)["fid_digits"]
    assert results["final"]["val/fid_digits"] == pytest.approx(single, rel=1e-4)
