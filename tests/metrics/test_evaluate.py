"""gan_lightning/evaluate.py (gan-evaluate) on the tiny run of tests/metrics/conftest.py:
metrics.json, the logged numbers reproduced, a table over a directory of checkpoints, safe
loading, and clear errors for bad input. (It lives here, not in tests/test_evaluate.py, to
share the metrics fixtures.)"""

from __future__ import annotations

import json

import pytest
import torch

from gan_lightning.evaluate import main

KEYS = {
    "checkpoint",
    "epoch",
    "batches_seen",
    "extractor",
    "num_samples",
    "num_real_samples",
    "split",
    "seed",
    "fid_digits",
    "kid_mean_digits",
    "kid_std_digits",
    "is_digits",
    "is_std_digits",
    "classes_covered_digits",
    "class_kl_digits",
    "class_histogram_digits",
}


def _results(path) -> list[dict]:
    return json.loads(path.read_text())["results"]


def test_project_checkpoints_load_with_weights_only(metrics_run):
    ckpt = metrics_run["dir"] / "checkpoints" / "epoch_001.ckpt"
    state = torch.load(ckpt, weights_only=True)
    assert state["gan_lightning"]["config"]["metrics"]["num_samples"] == 200


def test_one_checkpoint_reproduces_the_logged_scores(metrics_run, capsys):
    ckpt = metrics_run["dir"] / "checkpoints" / "epoch_001.ckpt"
    assert main([f"ckpt={ckpt}"]) == 0
    [row] = _results(ckpt.parent / "metrics.json")
    assert KEYS <= set(row)
    assert row["checkpoint"] == "epoch_001.ckpt" and row["epoch"] == 1
    assert row["num_samples"] == 200 and row["split"] == "val"  # the run's own settings
    logged = metrics_run["scores"][1]
    for name in (
        "fid_digits",
        "kid_mean_digits",
        "kid_std_digits",
        "is_digits",
        "class_kl_digits",
        "precision_digits",
        "recall_digits",
        "density_digits",
        "coverage_digits",
    ):
        assert row[name] == pytest.approx(logged[f"val/{name}"], rel=1e-4, abs=1e-7), name
    assert sum(row["class_histogram_digits"]) == pytest.approx(1.0)
    assert "FID" in capsys.readouterr().out


def test_a_directory_gives_a_table_over_epochs(metrics_run, tmp_path, capsys):
    output = tmp_path / "table.json"
    args = [
        f"ckpt={metrics_run['dir'] / 'checkpoints'}",
        f"output={output}",
        "metrics.num_samples=300",
        "metrics.split=test",
    ]
    assert main(args) == 0
    rows = _results(output)
    # last.ckpt is the epoch-1 checkpoint again: scored once.
    assert [r["checkpoint"] for r in rows] == ["epoch_000.ckpt", "epoch_001.ckpt"]
    assert all(r["num_samples"] == 300 and r["split"] == "test" for r in rows)
    out = capsys.readouterr().out
    assert "epoch_000.ckpt" in out and "epoch_001.ckpt" in out
    # Running again with other settings adds rows instead of overwriting.
    assert main([*args[:2], "metrics.num_samples=250"]) == 0
    assert sorted(r["num_samples"] for r in _results(output)) == [250, 250, 300, 300]


def test_missing_and_foreign_checkpoints_are_clear_errors(tmp_path, capsys):
    assert main([f"ckpt={tmp_path / 'nope.ckpt'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "epoch": 0}, foreign)
    assert main([f"ckpt={foreign}"]) == 2
    assert "not a gan-lightning checkpoint" in capsys.readouterr().err
    assert main(["metrics.num_samples=10"]) == 2
    assert "ckpt=<path>" in capsys.readouterr().err


class _Payload:
    """Unpickling this would run code (here: a harmless call) - weights_only refuses it."""

    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_pickled_objects_are_refused(tmp_path, capsys):
    evil = tmp_path / "evil.ckpt"
    torch.save(
        {"state_dict": {}, "gan_lightning": {"config": {"model": {}}}, "x": _Payload()}, evil
    )
    assert main([f"ckpt={evil}"]) == 2
    captured = capsys.readouterr()
    assert "not loadable safely" in captured.err
    assert "arbitrary code ran" not in captured.out


def test_too_few_samples_for_kid_is_a_clear_error(metrics_run, capsys):
    ckpt = metrics_run["dir"] / "checkpoints" / "last.ckpt"
    assert main([f"ckpt={ckpt}", "metrics.num_samples=20"]) == 2
    err = capsys.readouterr().err
    assert "metrics.num_samples=20 is smaller than metrics.kid_subset_size=50" in err
    assert "Traceback" not in err


def test_help_prints_the_usage_and_the_keys(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "gan-evaluate ckpt=<file.ckpt | directory>" in out and "baseline=train" in out
    assert "num_samples: 2000" in out  # the metrics settings are part of the config


def test_baseline_scores_real_train_images_against_the_split(mnist_dir, quick_classifier, tmp_path):
    output = tmp_path / "floor.json"
    args = [
        "baseline=train",
        f"data_dir={mnist_dir}",
        f"output={output}",
        "metrics.split=test",
        f"metrics.classifier_path={quick_classifier[0]}",
        "metrics.num_samples=300",
        "metrics.kid_subset_size=100",
        "metrics.kid_subsets=10",
    ]
    assert main(args) == 0
    [row] = _results(output)
    assert row["checkpoint"] == "real:train" and row["split"] == "test"
    # Real digits against real digits: all classes, a near-uniform histogram, IS near its max.
    assert row["classes_covered_digits"] == 10 and row["class_kl_digits"] < 0.1
    assert row["is_digits"] > 7.0 and row["fid_digits"] > 0
    # The floor of the paper scores too: real against real, labelled on both sides.
    assert 0.5 < row["precision_digits"] <= 1 and 0.5 < row["coverage_digits"] <= 1
    assert 0 < row["intra_fid_digits"] < float("inf") and row["protocol"]["num_real"] == 300


#: Protocol keys every row of metrics.json carries (docs/evaluation.md, "The protocol").
PROTOCOL_KEYS = {
    "num_generated",
    "num_real",
    "split",
    "seed",
    "extractor",
    "extractor_weights",
    "extractor_sha256",
    "extractor_sha256_of",
    "resize",
    "kid_subsets",
    "kid_subset_size",
    "precision_recall_k",
    "density_coverage_k",
    "versions",
}


def test_a_conditional_checkpoint_gets_prdc_intra_class_fid_and_the_protocol(
    mnist_dir, quick_classifier, tmp_path, capsys
):
    from gan_lightning.metrics.protocol import sha256_state_dict
    from tests.helpers import tiny_checkpoint

    ckpt = tiny_checkpoint("cgan", tmp_path, mnist_dir)
    output = tmp_path / "metrics.json"
    args = [
        f"ckpt={ckpt}",
        f"metrics.classifier_path={quick_classifier[0]}",
        "metrics.num_samples=300",
        "metrics.split=test",
        "metrics.kid_subset_size=100",
        "metrics.kid_subsets=5",
        "metrics.density_coverage_k=4",
    ]
    assert main([*args, f"output={output}"]) == 0
    [row] = _results(output)
    for name in ("precision", "recall", "density", "coverage"):
        assert 0.0 <= row[f"{name}_digits"] <= (5.0 if name == "density" else 1.0), name
    assert row["intra_fid_digits"] > 0 and len(row["intra_fid_per_class_digits"]) == 10
    assert row["intra_fid_digits"] == pytest.approx(sum(row["intra_fid_per_class_digits"]) / 10)
    assert 0.0 <= row["label_agreement_digits"] <= 1.0  # next to it, as before
    protocol = row["protocol"]
    assert set(protocol) == PROTOCOL_KEYS
    assert protocol["num_generated"] == 300 and protocol["num_real"] == 300
    assert protocol["split"] == "test" and protocol["density_coverage_k"] == 4
    assert protocol["extractor"] == "digits" and protocol["resize"] == "1x28x28: none"
    from gan_lightning.metrics.classifier import load_classifier

    assert protocol["extractor_sha256"] == sha256_state_dict(
        load_classifier(quick_classifier[0])[0]
    )
    assert set(protocol["versions"]) == {
        "torch",
        "torchvision",
        "torchmetrics",
        "torch-fidelity",
        "gan_lightning",
    }
    out = capsys.readouterr().out
    assert "intra-FID" in out and "precision" in out
    assert "protocol: 300 generated vs 300 real test images, extractor digits" in out
    # The run trained without them (metrics=none): gan-evaluate computes them unless told not to.
    off = tmp_path / "off.json"
    assert main([*args, f"output={off}", "metrics.prdc=false", "metrics.intra_fid=false"]) == 0
    [row] = _results(off)
    assert "precision_digits" not in row and "intra_fid_digits" not in row
    assert "precision_recall_k" not in row["protocol"] and "fid_digits" in row
