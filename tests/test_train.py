"""train.py as a user runs it: real MNIST, a few batches, the run directory it leaves."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, SMOKE


def run_train(args: list[str], cwd=REPO, timeout=600) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_and_cfg_job():
    out = run_train(["--help"])
    assert out.returncode == 0, out.stderr
    groups = {line.split(":")[0]: line for line in out.stdout.splitlines() if ": " in line}
    assert "gan" in groups["model"] and "mnist" in groups["data"]
    assert "seed000_mlp_gan" in groups["experiment"]
    out = run_train(["--cfg", "job", "model.d_steps=2", "data.batch_size=64"])
    assert out.returncode == 0, out.stderr
    assert "d_steps: 2" in out.stdout and "batch_size: 64" in out.stdout


@pytest.mark.slow
def test_real_mnist_smoke_run_through_train_py(mnist_dir, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "trainer.max_epochs=1",
        "trainer.max_steps=20",
        "trainer.limit_val_batches=2",
        "model.d_steps=2",
        "data.batch_size=64",
        f"paths.data_dir={mnist_dir}",
        f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false",
        "logger=csv",
        "trainer.log_every_n_steps=5",
    ]
    out = run_train(args)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MNIST source: existing" in out.stdout + out.stderr
    assert "Trained on 20 real batches" in out.stdout + out.stderr
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    state = torch.load(ckpt, weights_only=True)  # plain containers only
    assert state["gan_lightning"]["batches_seen"] == 20
    assert state["gan_lightning"]["config"]["model"]["d_steps"] == 2
    samples = sorted((run_dir / "samples").glob("*.png"))
    assert samples, "a sample grid is written at the end of the (stopped) epoch"
    metrics = (run_dir / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    assert "train/d_loss_step" in metrics[0] and "train/g_loss_step" in metrics[0]


def test_bad_value_is_one_clear_line(tmp_path):
    out = run_train([*SMOKE, "model.d_steps=0", f"hydra.run.dir={tmp_path}"])
    assert out.returncode == 2
    assert "Error: model.d_steps must be an integer >= 1; got 0." in out.stderr
    assert "Traceback" not in out.stderr


def test_group_null_switches_a_group_off():
    from gan_lightning.runtime.cli import null_group_overrides

    assert null_group_overrides(["train.py", "logger=null", "metrics=None", "seed=null"]) == [
        "train.py",
        "logger=none",
        "metrics=none",
        "seed=null",
    ]
    out = run_train(["logger=null", "--cfg", "job"])
    assert out.returncode == 0, out.stderr
    assert "wandb" not in out.stdout.split("callbacks:")[0]


@pytest.mark.slow
def test_multirun_over_the_three_models(mnist_dir, tmp_path):
    """`python train.py -m model=gan,dcgan,vae` (the product's one-line comparison)."""
    out = run_train(
        [
            "-m",
            "model=gan,dcgan,vae",
            "trainer.max_steps=3",
            "trainer.limit_val_batches=1",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "logger=csv",
            "metrics=none",
            f"paths.data_dir={mnist_dir}",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for job, net in enumerate(["MLPGenerator", "DCGANGenerator", "MLPDecoder"]):
        run_dir = tmp_path / str(job)
        config = (run_dir / ".hydra" / "config.yaml").read_text()
        assert net in config
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    # The VAE's config switched the data to [0, 1]; the GANs keep [-1, 1].
    assert "pixel_range:\n  - 0\n  - 1" in (tmp_path / "2" / ".hydra" / "config.yaml").read_text()
    assert "pixel_range:\n  - -1\n  - 1" in (tmp_path / "0" / ".hydra" / "config.yaml").read_text()
