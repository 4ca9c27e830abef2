"""`make bench ARGS=--quick` end to end: every path of benchmarks/ runs and reports.

No timing is asserted (timings live in BENCHMARKS.md); this only checks that the benchmark
runs, measures every path it promises and writes its two files.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_benchmark


@pytest.mark.slow
def test_quick_bench_runs_every_path_and_writes_its_report(mnist_dir, tmp_path):
    args = ["--quick", "--threads", "1", "--cases", "gan_default", "--out", str(tmp_path)]
    done = run_benchmark("bench", args, mnist_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "BENCHMARKS.json").read_text())
    measured = {m["path"]: m for m in record["measurements"] if m["case"] == "gan_default"}
    expected = {"plain", "project", "project_bare", "project_stock", "plain_tv0", "plain_tv2"}
    assert expected <= set(measured)
    for path in expected:
        assert "error" not in measured[path], measured[path].get("traceback")
        assert measured[path]["images_per_s"] > 0 and measured[path]["steps"] >= 5
    assert record["flops"]["gan_default"]["total"] > 0
    assert record["peaks_gflops"]["matmul_fp32"] > 0
    assert record["startup"][0]["total_s"] > 0 and record["startup"][0]["phases_s"]
    epochs = record["default_run"]["epochs"]
    assert epochs and all(e["train_batches_per_s"] > 0 for e in epochs)
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "<!-- bench:begin" in report and "<!-- bench:end -->" in report
    assert "`gan_default`" in report and "Time to first step" in report


@pytest.mark.slow
def test_checkpoint_benchmark_measures_size_and_save_time(mnist_dir):
    args = ["--repeats", "2", "--models", "gan (seed-000 MLP)", "conv_vae"]
    done = run_benchmark("checkpoints", args, mnist_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| gan (")]
    [[_, name, parameters, megabytes, save_ms, _]] = rows
    count = int(parameters.replace(",", ""))
    assert count > 1_000_000  # seed 000's nets, counted
    assert float(megabytes) > 3 * 4 * count / 2**20  # fp32 weights + both Adam moments
    assert float(save_ms) > 0
    assert "| conv_vae |" in done.stdout
