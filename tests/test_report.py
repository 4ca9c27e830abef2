"""The sweep report: rows from job dirs (written by hand here, and by a real seed 003 sweep),
the Markdown table, the CSV, the plot, and ``gan-report`` rebuilding it later."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan_lightning.report import SweepReport, find_jobs, main, write_report
from tests.conftest import REPO
from tests.metrics.helpers import metrics_overrides, random_classifier_file
from tests.test_train import run_train


def fake_job(sweep: Path, name: str, num: int, overrides: list[str], results: dict | None) -> Path:
    """A job dir as Hydra and RunResults leave it."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    OmegaConf.save(
        OmegaConf.create({"hydra": {"job": {"num": num}}}), job / ".hydra" / "hydra.yaml"
    )
    if results is not None:
        (job / "results.json").write_text(json.dumps(results))
    return job


def gan_results(fids: list[float], run_id: str, steps: int = 30) -> dict:
    history = [
        {
            "step": 10 * (i + 1),
            "epoch": i,
            "metrics": {"val/fid_digits": f, "val/kid_mean_digits": f / 100},
        }
        for i, f in enumerate(fids)
    ]
    return {
        "status": "finished",
        "steps": steps,
        "wall_time_s": 75.4,
        "final": {
            "val/fid_digits": fids[-1],
            "val/kid_mean_digits": fids[-1] / 100,
            "val/g_loss": 1.0,
        },
        "best": {
            "val/fid_digits": min(fids),
            "val/kid_mean_digits": min(fids) / 100,
            "val/g_loss": 0.5,
        },
        "history": history,
        "wandb": {"run_id": run_id, "dir": None},
    }


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    common = ["experiment=seed003_bn_ablation", "trainer.max_epochs=2"]
    fake_job(
        tmp_path,
        "0_x",
        0,
        ["model.d_steps=1", "data.digits=[2]", *common],
        gan_results([90.0, 80.0, 85.0], "aaa"),
    )
    fake_job(
        tmp_path,
        "1_x",
        1,
        ["model.d_steps=2", "data.digits=[2]", *common],
        gan_results([70.0, 60.0], "bbb"),
    )
    fake_job(
        tmp_path, "10_x", 10, ["model.d_steps=3", "data.digits=[2]", *common], None
    )  # failed early
    return tmp_path


def test_report_rows_table_and_plot(sweep):
    report = write_report(sweep, labels={"model.d_steps": "k"})
    assert [job.num for job in report.jobs] == [0, 1, 10]  # job order, not name order
    lines = report.markdown.splitlines()
    header = next(line for line in lines if line.startswith("| job"))
    assert header == (
        "| job | k | FID final | FID best | KID final | KID best | steps | wall time | status "
        "| run dir | W&B run |"
    )
    rows = [line for line in lines if line.startswith("| ") and line != header]
    assert rows[0] == "| 0 | 1 | 85 | 80 | 0.85 | 0.8 | 30 | 1:15 | finished | 0_x | aaa |"
    assert rows[1] == "| 1 | 2 | 60 | 60 | 0.6 | 0.6 | 30 | 1:15 | finished | 1_x | bbb |"
    assert rows[2] == "| 10 | 3 | - | - | - | - | - | - | no results | 10_x | - |"
    assert "`experiment=seed003_bn_ablation`" in report.markdown  # shared, above the table
    assert (sweep / "summary.md").read_text() == report.markdown

    with report.csv.open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["job"] for r in table] == ["0", "1", "10"]
    assert table[1]["model.d_steps"] == "2" and table[1]["wandb_run_id"] == "bbb"
    assert float(table[0]["val/fid_digits (final)"]) == 85.0
    assert float(table[0]["val/g_loss (best)"]) == 0.5  # the CSV has every metric
    assert table[0]["overrides"].startswith("model.d_steps=1 data.digits=[2]")
    assert Path(table[0]["run_dir"]) == (sweep / "0_x").resolve()
    assert report.plot is not None and report.plot.stat().st_size > 0


def test_vae_jobs_report_their_losses(tmp_path):
    results = {
        "status": "finished",
        "final": {"val/loss": 140.0, "val/recon": 130.0, "val/kl": 10.0},
        "best": {"val/loss": 139.0, "val/recon": 129.0, "val/kl": 9.0},
        "history": [{"step": 5, "epoch": 0, "metrics": {"val/loss": 140.0}}],
    }
    fake_job(tmp_path, "0", 0, ["model=vae", "seed=1"], results)
    fake_job(tmp_path, "1", 1, ["model=vae", "seed=2"], results)
    markdown = write_report(tmp_path).markdown
    assert (
        "| job | seed | loss final | loss best | recon final | recon best | KL final | KL best |"
        in markdown
    )


def _scored(precision: float, protocol: dict | None) -> dict:
    results = gan_results([50.0, 40.0], "r")
    for key, value in {"val/precision_digits": precision, "val/recall_digits": 0.7}.items():
        results["final"][key] = results["best"][key] = value
        results["history"][-1]["metrics"][key] = value
    results["protocol"] = protocol
    return results


def test_precision_recall_columns_and_the_protocol_line(tmp_path):
    protocol = {
        "num_generated": 2000,
        "num_real": 2000,
        "split": "val",
        "seed": 0,
        "extractor": "digits",
        "extractor_sha256": "ab" * 32,
        "extractor_sha256_of": "state_dict",
        "resize": "1x28x28: none",
        "versions": {"torch": "2.15.0", "torchmetrics": "1.9.0"},
    }
    fake_job(tmp_path, "0", 0, ["seed=1"], _scored(0.8, protocol))
    fake_job(tmp_path, "1", 1, ["seed=2"], _scored(0.6, protocol))
    report = write_report(tmp_path)
    header = next(line for line in report.markdown.splitlines() if line.startswith("| job"))
    assert "| precision final | precision best | recall final | recall best |" in header
    assert "| 0 | 1 | 40 | 40 | 0.4 | 0.4 | 0.8 | 0.8 | 0.7 | 0.7 |" in report.markdown
    assert (
        "Scored on 2000 generated vs 2000 real val images, extractor digits (sha256 abababababab "
        "of its state_dict), resize 1x28x28: none, seed 0; torch 2.15.0, torchmetrics 1.9.0."
    ) in report.markdown
    with report.csv.open() as handle:
        assert next(csv.DictReader(handle))["protocol"].startswith("2000 generated vs 2000")
    # A job scored on the test split cannot be compared with the others: the report says so.
    fake_job(tmp_path, "2", 2, ["seed=3"], _scored(0.9, {**protocol, "split": "test"}))
    markdown = write_report(tmp_path).markdown
    assert "Not all scores are comparable: the jobs' scoring protocols differ in split" in markdown
    assert "Scored on" not in markdown


def test_hydra_callback_prints_the_table(sweep, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    SweepReport(labels={"model.d_steps": "k"}).on_multirun_end(config)
    out = capsys.readouterr().out
    assert "| 1 | 2 | 60 | 60 |" in out and f"Sweep report: {sweep / 'summary.md'}" in out


def test_gan_report_cli(sweep, capsys):
    assert main([str(sweep)]) == 0  # gan-report <sweep dir>
    assert "| 1 | 2 | 60 | 60 |" in capsys.readouterr().out
    (sweep / "summary.md").unlink()
    assert main([f"sweep_dir={sweep}"]) == 0
    assert (sweep / "summary.md").is_file()
    assert main([str(sweep / "0_x" / ".hydra")]) == 2  # not a sweep dir: one line, exit 2
    assert "Error: sweep_dir=" in capsys.readouterr().err
    assert main([]) == 2


# ---------------------------------------------------------------------------- integration
@pytest.mark.slow
def test_seed003_bn_ablation_ends_with_table_vi(mnist_dir, tmp_path):
    """`python train.py -m experiment=seed003_bn_ablation`, tiny: four DCGANs, one evaluation."""
    classifier = random_classifier_file(tmp_path / "classifier.pt")
    sweep = tmp_path / "sweep"
    out = run_train(
        [
            "-m",
            "experiment=seed003_bn_ablation",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "trainer.log_every_n_steps=1",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "model.generator.base_width=4",
            "model.discriminator.base_width=4",
            "num_threads=1",
            "logger=none",
            f"paths.data_dir={mnist_dir}",
            f"hydra.sweep.dir={sweep}",
            *metrics_overrides(classifier),
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = find_jobs(sweep)
    assert [job.dir.name for job in jobs] == [
        "0_Gbn=True_Dbn=True",
        "1_Gbn=False_Dbn=True",
        "2_Gbn=True_Dbn=False",
        "3_Gbn=False_Dbn=False",
    ]
    # Table VI: G BN x D BN -> FID/KID at the last epoch, printed at the end of the sweep.
    table = out.stdout[out.stdout.index("| job |") :]
    lines = table.splitlines()
    assert lines[0].startswith(
        "| job | G BN | D BN | FID final | FID best | KID final | KID best |"
    )
    for line, job in zip(lines[2:6], jobs, strict=True):
        g_bn, d_bn = (
            job.values["model.generator.batch_norm"],
            job.values["model.discriminator.batch_norm"],
        )
        fid = job.results["final"]["val/fid_digits"]
        kid = job.results["final"]["val/kid_mean_digits"]
        assert line.startswith(
            f"| {job.num} | {g_bn} | {d_bn} | {fid:.4g} | {fid:.4g} | {kid:.4g} |"
        )
        assert job.results["status"] == "finished" and job.results["steps"] == 2
    assert (sweep / "summary.png").is_file() and (sweep / "summary.csv").is_file()
    # gan-report rebuilds the same report from the sweep dir (with the sweep's column names).
    printed = (sweep / "summary.md").read_text()
    (sweep / "summary.md").unlink()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "gan_lightning.report", str(sweep)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert (sweep / "summary.md").read_text() == printed
