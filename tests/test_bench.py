"""`make bench ARGS=--quick` end to end: every path of benchmarks/ runs and reports.

No timing is asserted (timings live in BENCHMARKS.md); this only checks that the benchmark
runs, measures every path it promises and writes its two files.
"""

from __future__ import annotations

import json

import pytest
import torch

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


def test_bench_on_cuda_without_a_gpu_says_so_and_stops(mnist_dir, monkeypatch, capsys):
    """On a machine without CUDA, ``--device cuda`` is one error line and exit code 2, before
    anything is measured."""
    import torch

    from benchmarks import bench

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(bench, "ensure_data", lambda: pytest.fail("measured without a GPU"))
    assert bench.main(["--device", "cuda", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --device cuda: this machine has no usable CUDA GPU")
    assert bench.main(["--device", "tpu"]) == 2


def test_plain_loop_on_a_device_moves_data_once_and_runs_synthetic_cases(tmp_path):
    """The GPU path's plumbing, run on the CPU: the 3x64x64 synthetic case builds, steps and
    times through the same code (device "cpu" stands in for "cuda")."""
    from benchmarks.cases import GPU_CASES, compose_config, synthetic_case_data
    from benchmarks.plain import Options, time_plain

    case = GPU_CASES["dcgan3x64"]
    cfg = compose_config([*case.overrides, "data.batch_size=4"], tmp_path)
    data = synthetic_case_data(cfg, 16, "cpu")
    assert data.train_images.shape == (16, 3, 64, 64) and data.train_images.dtype == torch.uint8
    timing = time_plain(data, Options(), "memory", warmup_steps=1, seconds=0.0, min_steps=2)
    assert timing.steps == 2 and timing.images_per_s > 0


def test_loader_alone_is_measured_on_the_cases_device(mnist_dir, tmp_path):
    from benchmarks.bench import time_loader
    from benchmarks.cases import CASES, compose_config, load_case_data

    cfg = compose_config(CASES["gan_default"].overrides, tmp_path)
    measured = time_loader(load_case_data(cfg, "cpu"), 0.2)
    assert measured["images"] > 0 and measured["images_per_s"] > 0


def test_the_evaluation_micro_benchmarks_run(capsys):
    """``python -m benchmarks.kid`` and ``python -m benchmarks.classifier`` at toy sizes: they
    time what they say and report agreeing scores."""
    from benchmarks import classifier as classifier_bench
    from benchmarks import kid as kid_bench

    assert (
        kid_bench.main(["--n", "120", "--subsets", "4", "--subset-size", "50", "--repeats", "1"])
        == 0
    )
    assert classifier_bench.main(["--batch", "8", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "BlockKID's next compute on the same real features" in out
    assert "inference form" in out
    difference = float(out.split("largest score difference ")[1].split()[0])
    assert difference < 1e-5
    features = float(out.split("features ")[-1].split(",")[0])
    assert features < 1e-4
