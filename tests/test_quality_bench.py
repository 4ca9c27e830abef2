"""`python -m benchmarks.quality --quick`: every row of a table trains, is scored and lands in
the table (no score is asserted: the figures live in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.helpers import run_benchmark


@pytest.mark.slow
def test_quick_quality_table_trains_and_scores_every_row(mnist_dir, tmp_path):
    args = ["--quick", "--rows", "precision", "--seeds", "1", "--jobs", "2", "--out", str(tmp_path)]
    done = run_benchmark("quality", args, mnist_dir, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "quality_results.json").read_text())
    rows = record["results"]["precision"]
    assert sorted(rows) == sorted(
        f"{m} {p}" for m in ("gan", "dcgan", "vae") for p in ("32-true", "bf16-mixed")
    )
    for name, runs in rows.items():
        assert len(runs) == 1 and "error" not in runs[0], (name, runs)
        assert runs[0]["fid_digits"] > 0 and runs[0]["classes_covered_digits"] >= 1
    assert record["meta"]["budgets"] == {"precision": 5}
    assert "| dcgan bf16-mixed |" in done.stdout


def test_a_bad_budget_is_refused():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.quality", "--budget", "dcgan=lots"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "TABLE=BATCHES" in done.stderr
