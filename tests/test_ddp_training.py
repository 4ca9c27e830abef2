"""Multi-process training as a user asks for it: `trainer=ddp trainer.devices=2` (and the
default trainer with `trainer.devices=2`) trains the GAN, the DCGAN and the VAE with 2 CPU
processes (gloo). Real subprocesses on real MNIST; :class:`tests.helpers.BatchProbe` records
what each rank did."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.slow

TINY = {
    "gan": [
        "model=gan",
        "model.generator.hidden_sizes=[32]",
        "model.discriminator.hidden_sizes=[32]",
    ],
    "dcgan": ["model=dcgan", "model.generator.base_width=8", "model.discriminator.base_width=8"],
    "vae": ["model=vae", "model.encoder.hidden_sizes=[32]", "model.decoder.hidden_sizes=[32]"],
}
LOSS = {"gan": "train/d_loss", "dcgan": "train/d_loss", "vae": "train/loss"}


def train(run_dir: Path, mnist_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "train.py",
        *overrides,
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_steps=6",
        "trainer.max_epochs=-1",
        "trainer.limit_train_batches=3",  # 3-batch epochs: epoch means are logged twice
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",  # step values every batch: the probe records them
        "trainer.enable_model_summary=false",
        "data.batch_size=16",
        "num_threads=1",
        "metrics=none",
        "logger=csv",
        "callbacks.interpolation=null",
        "callbacks.progress.style=lines",
        "+callbacks.probe._target_=tests.helpers.BatchProbe",
        f"+callbacks.probe.out_dir={run_dir / 'probe'}",
        f"paths.data_dir={mnist_dir}",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def ranks(run_dir: Path) -> list[dict]:
    return [torch.load(run_dir / "probe" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def logged(run_dir: Path, key: str) -> list[float]:
    with open(run_dir / "csv" / "version_0" / "metrics.csv") as handle:
        return [float(row[key]) for row in csv.DictReader(handle) if row.get(key)]


@pytest.mark.parametrize("model", sorted(TINY))
def test_two_processes_train_in_lockstep_on_different_data(model, mnist_dir, tmp_path):
    run_dir = tmp_path / "run"
    result = train(run_dir, mnist_dir, "trainer=ddp", *TINY[model])
    rank0, rank1 = ranks(run_dir)
    assert rank0["world_size"] == rank1["world_size"] == 2
    # Identical weights after training (EMA and BatchNorm buffers included).
    for key, value in rank0["state_dict"].items():
        assert torch.equal(value, rank1["state_dict"][key]), key
    # Each rank trained on its own share of the data: no real image seen by both.
    assert len(rank0["samples"]) == len(rank1["samples"]) == 6 * 16
    assert not set(rank0["samples"]) & set(rank1["samples"])
    # The epoch mean rank 0 logs is the mean over both ranks' steps of that epoch.
    loss = LOSS[model]
    for epoch, logged_mean in enumerate(logged(run_dir, f"{loss}_epoch")):
        steps = [
            s[f"{loss}_step"] for r in (rank0, rank1) for s in r["steps"] if s["epoch"] == epoch
        ]
        assert len(steps) == 6
        assert logged_mean == pytest.approx(sum(steps) / len(steps), rel=1e-5)
    # Files are written once, by rank 0.
    assert sorted(p.name for p in (run_dir / "csv").iterdir()) == ["version_0"]
    assert len(list((run_dir / "samples").glob("epoch_*.png"))) == 2  # two epochs, one grid each
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (
        result.stdout.count("Trained on 6 real batches")
        + result.stderr.count("Trained on 6 real batches")
        == 1
    )


def test_the_default_trainer_with_two_devices_picks_a_working_strategy(mnist_dir, tmp_path):
    """`python train.py trainer.devices=2` (no trainer=ddp) used to fail with DDP's "parameters
    that were not used in producing the loss"; the GAN now picks its strategy."""
    run_dir = tmp_path / "run"
    train(run_dir, mnist_dir, *TINY["gan"])  # fails (exit 1) without a working strategy
    rank0, rank1 = ranks(run_dir)
    assert rank0["world_size"] == rank1["world_size"] == 2
    for key, value in rank0["state_dict"].items():
        assert torch.equal(value, rank1["state_dict"][key]), key


def test_sync_batchnorm_on_cpu_is_refused_before_training(mnist_dir, tmp_path):
    """torch's SyncBatchNorm exists only on GPUs; on CPU DDP keeps BatchNorm statistics in step
    by broadcasting rank 0's (the lockstep test above checks they agree)."""
    cmd = [sys.executable, "train.py", "trainer=ddp", "trainer.accelerator=cpu",
           "trainer.sync_batchnorm=true", "model=dcgan", f"paths.data_dir={mnist_dir}",
           f"hydra.run.dir={tmp_path}"]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "trainer.sync_batchnorm=true needs GPUs" in result.stderr
