"""Fixtures of the metrics tests: a quickly trained digit classifier and one tiny training run
with scores, shared by the callback and the evaluate-CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_lightning.metrics.classifier import (
    load_mnist_tensors,
    save_classifier,
    train_digit_classifier,
)
from tests.metrics.helpers import QUICK_TRAIN_SIZE, metrics_overrides, smoke_with_metrics


@pytest.fixture(scope="session")
def quick_classifier(
    mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, float]:
    """A digit classifier trained for one epoch on 6k MNIST images: (weights file, accuracy)."""
    model, test_accuracy = train_digit_classifier(
        load_mnist_tensors(mnist_dir), epochs=1, train_size=QUICK_TRAIN_SIZE, batch_size=64
    )
    path = tmp_path_factory.mktemp("classifier") / "digits.pt"
    save_classifier(model, path, test_accuracy=test_accuracy)
    return path, test_accuracy


@pytest.fixture(scope="session")
def metrics_run(mnist_dir: Path, quick_classifier, tmp_path_factory) -> dict:
    """Two 3-batch epochs of the default MLP GAN on real MNIST with FID/KID/IS every epoch and
    the best checkpoint chosen on FID: the trainer, the metrics callback and the run dir."""
    from gan_lightning.metrics.callback import GenerativeMetrics
    from gan_lightning.train import build
    from tests.conftest import compose_config

    out = tmp_path_factory.mktemp("metrics_run")
    overrides = [
        o
        for o in smoke_with_metrics()
        if not o.startswith(("trainer.max_steps", "trainer.num_sanity", "logger="))
    ]
    cfg = compose_config(
        [
            *overrides,
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=3",
            "trainer.num_sanity_val_steps=1",  # the sanity check must not be scored
            "logger=csv",  # the tests read the scores back from what a user reads
            f"data.data_dir={mnist_dir}",
            "++callbacks.model_checkpoint.monitor=val/fid_digits",
            "++callbacks.model_checkpoint.mode=min",
            *metrics_overrides(quick_classifier[0]),
            "metrics.prdc=true",  # opt-in while training: logged, and in results.json
        ],
        out,
    )
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule)
    [callback] = [c for c in trainer.callbacks if isinstance(c, GenerativeMetrics)]
    return {
        "trainer": trainer,
        "callback": callback,
        "dir": out,
        "model": model,
        "scores": logged_scores(out / "csv" / "version_0" / "metrics.csv"),
    }


def logged_scores(csv_path: Path) -> list[dict[str, float]]:
    """The rows of the CSV logger that carry scores (one per evaluation), as numbers."""
    import csv

    with open(csv_path) as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("val/fid_digits")]
    return [{k: float(v) for k, v in r.items() if v != ""} for r in rows]
