"""``hydra/launcher=joblib``: a multirun's jobs train in parallel local processes, each in its
own run dir with its own (offline) W&B run, and the sweep report lists them."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import one_epoch_of
from tests.test_train import run_train

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]", re.M)


def log_window(log: Path) -> tuple[datetime, datetime]:
    """First and last timestamp of a job's train.log."""
    stamps = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in STAMP.findall(log.read_text())]
    return stamps[0], stamps[-1]


@pytest.mark.slow
def test_joblib_jobs_run_in_parallel_each_with_its_dir_and_wandb_run(mnist_dir, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_train(
        [
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",  # also on a 1-core machine, where -1 would mean 1
            "model.optimizer_g.lr=1e-4,1e-3",
            *one_epoch_of(20),
            "metrics=none",
            "logger=wandb",
            f"paths.data_dir={mnist_dir}",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in out.stdout + out.stderr

    run_ids = []
    for job in ("0", "1"):
        results = json.loads((sweep / job / "results.json").read_text())
        assert results["status"] == "finished" and results["steps"] == 20
        assert results["hydra"]["output_dir"] == str(sweep / job)
        [offline_run] = (sweep / job / "wandb").glob("offline-run-*")  # one W&B run per job
        assert offline_run.name.endswith(results["wandb"]["run_id"])
        run_ids.append(results["wandb"]["run_id"])
    assert len(set(run_ids)) == 2

    # In parallel: each job started before the other one finished.
    (start0, end0), (start1, end1) = (log_window(sweep / j / "train.log") for j in ("0", "1"))
    assert start1 < end0 and start0 < end1

    with (sweep / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["wandb_run_id"] for r in rows] == run_ids
    assert [r["model.optimizer_g.lr"] for r in rows] == ["0.0001", "0.001"]
    assert "| job | model.optimizer_g.lr | d_loss final |" in (sweep / "summary.md").read_text()
