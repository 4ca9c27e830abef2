"""The metrics callback in a real (tiny) training run, and its config checks."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.callback import GenerativeMetrics
from gan_lightning.runtime.cli import user_error
from gan_lightning.train import build
from tests.conftest import compose_config
from tests.metrics.helpers import smoke_with_metrics

NAMES = (
    "fid_digits",
    "kid_mean_digits",
    "kid_std_digits",
    "is_digits",
    "classes_covered_digits",
    "class_kl_digits",
)


def test_scores_are_logged_every_epoch_but_not_in_the_sanity_check(metrics_run):
    trainer, callback, scores = (metrics_run[k] for k in ("trainer", "callback", "scores"))
    assert [row["epoch"] for row in scores] == [0, 1]  # none for the sanity check
    assert [row["step"] for row in scores] == [2, 5]  # 3 batches an epoch (x-axis: batches - 1)
    for name in NAMES:
        assert f"val/{name}" in trainer.callback_metrics, name
        assert f"val/{name}" in scores[-1], name
    last = {k.removeprefix("val/"): v for k, v in scores[-1].items()}
    assert float(trainer.callback_metrics["val/fid_digits"]) == pytest.approx(last["fid_digits"])
    assert last["fid_digits"] > 0 and 1.0 <= last["is_digits"] <= 10.0
    assert 0 <= last["classes_covered_digits"] <= 10
    assert callback.scorer.num_real == 200  # one seeded real subset, extracted once
    assert not any(p.requires_grad for p in callback.scorer.parameters())
    assert all("scorer" not in name for name, _ in metrics_run["model"].named_parameters())


def test_prdc_is_logged_and_the_protocol_goes_to_results_and_the_logger(metrics_run):
    import json

    from omegaconf import OmegaConf

    last = metrics_run["scores"][-1]
    for name in ("precision", "recall", "density", "coverage"):
        assert 0.0 <= last[f"val/{name}_digits"] <= (6.0 if name == "density" else 1.0), name
    assert "val/intra_fid_digits" not in last  # an unconditional model
    protocol = metrics_run["callback"].protocol
    assert protocol["num_generated"] == protocol["num_real"] == 200
    results = json.loads((metrics_run["dir"] / "results.json").read_text())
    assert results["protocol"] == protocol
    assert results["best"]["val/precision_digits"] == max(  # higher is better
        row["val/precision_digits"] for row in metrics_run["scores"]
    )
    # The loggers get it once, as config (CSV: hparams.yaml), not as per-step scalars.
    hparams = OmegaConf.load(metrics_run["dir"] / "csv" / "version_0" / "hparams.yaml")
    assert OmegaConf.to_container(hparams.metrics_protocol) == protocol
    assert not any("protocol" in key for row in metrics_run["scores"] for key in row)


def test_best_checkpoint_is_selected_on_fid(metrics_run):
    checkpoint = metrics_run["trainer"].checkpoint_callback
    fids = [row["val/fid_digits"] for row in metrics_run["scores"]]
    best_epoch = fids.index(min(fids))
    assert float(checkpoint.best_model_score) == pytest.approx(min(fids))
    assert checkpoint.best_model_path.endswith(f"epoch_{best_epoch:03d}.ckpt")
    state = torch.load(checkpoint.best_model_path, weights_only=True)
    assert state["epoch"] == best_epoch


def test_non_image_data_are_not_scored():
    callback = GenerativeMetrics(extractor="auto", image_shape=[1])
    assert not callback.enabled


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        (
            "metrics.num_samples=400",
            "metrics.num_samples=400 is smaller than metrics.kid_subset_size=500",
        ),
        ("metrics.every_n_epochs=0", "metrics.every_n_epochs"),
        ("metrics.split=holdout", "metrics.split"),
        ("metrics.extractor=vgg", "metrics.extractor"),
        ("metrics.inception_weights=/nonexistent/weights.pth", "metrics.inception_weights="),
    ],
)
def test_bad_metrics_settings_fail_before_training(override, needle, tmp_path):
    extra = ["metrics.extractor=inception"] if "inception_weights" in override else []
    cfg = compose_config([*smoke_with_metrics(), *extra, override], tmp_path)
    with pytest.raises(Exception) as err:
        build(cfg)
    user = user_error(err.value)
    assert isinstance(user, ConfigError), err.value
    assert needle in str(user)


def test_metrics_none_turns_scoring_off(tmp_path):
    cfg = compose_config([*smoke_with_metrics(), "metrics=none"], tmp_path)
    _, _, trainer = build(cfg)
    assert not any(isinstance(c, GenerativeMetrics) for c in trainer.callbacks)


def test_the_collapse_watch_warns_after_patience_evaluations(caplog):
    callback = GenerativeMetrics(extractor="digits", image_shape=[1, 28, 28], collapse_patience=2)
    healthy = {"classes_covered_digits": 10.0, "diversity_digits": 0.9}
    collapsed = {"classes_covered_digits": 3.0, "diversity_digits": 0.2}
    with caplog.at_level("WARNING"):
        assert callback.watch_collapse(collapsed) == 0.0  # once may be noise
        assert callback.watch_collapse(collapsed) == 1.0
    assert "Mode collapse suspected: 3 classes covered (< 8)" in caplog.text
    assert "sample diversity 0.20" in caplog.text
    assert callback.watch_collapse(healthy) == 0.0  # recovered: the count starts again
    assert callback.watch_collapse(collapsed) == 0.0
    # Other data: diversity alone.
    other = GenerativeMetrics(extractor="digits", image_shape=[1, 28, 28], collapse_patience=1)
    assert other.watch_collapse({"diversity_digits": 0.1}) == 1.0
    with pytest.raises(ConfigError, match="collapse_patience"):
        GenerativeMetrics(extractor="digits", image_shape=[1, 28, 28], collapse_patience=0)
