"""Exact resume, as a user meets it: a training process killed (SIGKILL) or preempted
(SIGTERM) mid-epoch, then `resume=auto`, ends with the same weights, bit for bit, as a run
that was never interrupted. Real subprocesses on real MNIST, tiny nets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.slow

#: 25-batch epochs, 60 batches: the kills land in the middle of the second epoch.
COMMON = [
    "trainer.max_steps=60",
    "trainer.max_epochs=-1",
    "trainer.limit_train_batches=25",
    "trainer.limit_val_batches=2",
    "trainer.accelerator=cpu",
    "trainer.deterministic=true",
    "trainer.enable_model_summary=false",
    "seed=3",
    "num_threads=1",
    "metrics=none",
    "callbacks.model_checkpoint.every_n_train_steps=10",
    "callbacks.progress.style=lines",
    "callbacks.progress.log_every_n_batches=1",
    "callbacks.interpolation=null",
    "callbacks.curves=null",
    "callbacks.sample_gif=null",
]
MODELS = {
    "gan_d_steps_3": [
        "model=gan",
        "model.d_steps=3",
        "model.generator.hidden_sizes=[32,64]",
        "model.discriminator.hidden_sizes=[64,32]",
        "model.discriminator.dropout=0.2",  # dropout draws from the RNG too
    ],
    "vae": ["model=vae", "model.encoder.hidden_sizes=[64]", "model.decoder.hidden_sizes=[64]"],
    # Re-clustered on D's features at batches 20 and 40: before the kill and after the resume.
    "gan_self_conditioned": [
        "model=gan",
        "model/self_conditioning=discriminator",
        "model.self_conditioning.clusters=5",
        "model.self_conditioning.num_images=256",
        "model.self_conditioning.recluster_every=20",
        "model.generator.hidden_sizes=[32,64]",
        "model.discriminator.hidden_sizes=[64,32]",
    ],
}


def command(run_dir: Path, mnist_dir: Path, model: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        *MODELS[model],
        *COMMON,
        f"paths.data_dir={mnist_dir}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}


def run_to_end(cmd: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    return result


def interrupt_at(cmd: list[str], batch: int, signum: int) -> tuple[int, str]:
    """Start training, send ``signum`` once the progress line of real batch ``batch`` (global,
    1-based) is printed; returns the exit code and everything printed."""
    process = subprocess.Popen(
        cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    printed, sent = [], False
    epoch_batches = 25
    for line in process.stdout:
        printed.append(line)
        found = re.search(r"epoch (\d+).*\| batch (\d+)/", line)
        if not sent and found:
            done = int(found.group(1)) * epoch_batches + int(found.group(2))
            if done >= batch:
                process.send_signal(signum)
                sent = True
    code = process.wait(timeout=600)
    assert sent, "".join(printed)[-3000:]
    return code, "".join(printed)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs after the resume"


@pytest.fixture(scope="module")
def uninterrupted(mnist_dir, tmp_path_factory) -> dict[str, Path]:
    runs = {}
    for model in MODELS:
        run_dir = tmp_path_factory.mktemp(f"whole_{model}")
        run_to_end(command(run_dir, mnist_dir, model))
        runs[model] = run_dir
    return runs


@pytest.mark.parametrize("model", sorted(MODELS))
def test_sigkill_mid_epoch_then_resume_auto_is_bit_identical(
    model, uninterrupted, mnist_dir, tmp_path
):
    run_dir = tmp_path / "run"
    cmd = command(run_dir, mnist_dir, model)
    code, printed = interrupt_at(cmd, batch=33, signum=signal.SIGKILL)
    assert code == -signal.SIGKILL
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["gan_lightning"]["batches_seen"] == 30  # every 10 batches: lost at most 10
    resumed = run_to_end([*cmd, "resume=auto"])
    out = resumed.stdout + resumed.stderr
    assert f"Resuming from {run_dir / 'checkpoints' / 'last.ckpt'}: batch 30 (epoch 1)" in out
    assert "Trained on 60 real batches" in out
    assert_same_weights(run_dir, uninterrupted[model])


def test_sigterm_saves_at_the_next_batch_and_resume_continues_there(
    uninterrupted, mnist_dir, tmp_path
):
    run_dir = tmp_path / "run"
    cmd = command(run_dir, mnist_dir, "gan_d_steps_3", "logger=wandb")
    code, printed = interrupt_at(cmd, batch=37, signum=signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, printed[-2000:]
    stopped = re.search(r"Stopped by SIGTERM after batch (\d+)", printed)
    assert stopped, printed[-2000:]
    at = int(stopped.group(1))
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["gan_lightning"]["batches_seen"] == at and 37 <= at < 60
    resumed = run_to_end([*cmd, "resume=auto"])
    out = resumed.stdout + resumed.stderr
    assert f"batch {at} (epoch 1)" in out
    # The next batch it trains is at + 1 (1-based), inside the same epoch.
    assert re.search(rf"epoch 1 \| batch {at - 25 + 1}/25", out), out[-3000:]
    assert_same_weights(run_dir, uninterrupted["gan_d_steps_3"])
    # One W&B run, continued: the offline run directories of both processes share its id.
    ids = {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2 and len(ids) == 1


def test_resume_auto_finds_the_newest_run_of_the_same_experiment(mnist_dir, tmp_path):
    """Without hydra.run.dir: the newest run under logs/<task>/runs with the same overrides."""
    logs = tmp_path / "logs"
    base = [
        a
        for a in command(tmp_path / "unused", mnist_dir, "vae", f"paths.log_dir={logs}")
        if not a.startswith("hydra.run.dir=")
    ]
    code, _ = interrupt_at(base, batch=12, signum=signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    other = [a if a != "trainer.max_steps=60" else "trainer.max_steps=5" for a in base]
    run_to_end(other)
    resumed = run_to_end([*base, "resume=auto"])
    runs = sorted((logs / "train" / "runs").iterdir())
    first = next(
        r for r in runs if "trainer.max_steps=60" in (r / ".hydra/overrides.yaml").read_text()
    )
    assert f"resume=auto: continuing the run in {first}" in resumed.stdout + resumed.stderr
    assert len(runs) == 2  # the resumed run wrote into its old directory, not a new one
