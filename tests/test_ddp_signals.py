"""A preemption signal that reaches ONE rank of a `trainer=ddp trainer.devices=2` job (what a
user's `kill <pid>` or a scheduler signalling one task does): both processes save together and
end within a minute, `last.ckpt` is written once and loads, and `resume=auto` continues it to
the same weights as a run that was never interrupted. The checkpoint holds one random state per
rank and also resumes on one process. Real subprocesses (gloo) on real MNIST, tiny nets."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.slow

STEPS = 40
EPOCH = 10  # real batches per rank and epoch
SIGNAL_AFTER = 14  # rank 0's progress line of this (global, 1-based) batch triggers the kill
COMMON = [
    "trainer=ddp",
    "trainer.devices=2",
    "trainer.accelerator=cpu",
    f"trainer.max_steps={STEPS}",
    "trainer.max_epochs=-1",
    f"trainer.limit_train_batches={EPOCH}",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.deterministic=true",
    "trainer.enable_model_summary=false",
    "model=gan",
    "model.generator.hidden_sizes=[32]",
    "model.discriminator.hidden_sizes=[32]",
    "model.discriminator.dropout=0.2",  # dropout draws from each rank's stream too
    "data.batch_size=16",
    "seed=5",
    "num_threads=1",
    "metrics=none",
    "logger=csv",
    "callbacks.model_checkpoint.every_n_train_steps=0",  # last.ckpt: the signal's save only
    "callbacks.progress.style=lines",
    "callbacks.progress.log_every_n_batches=1",
    "callbacks.interpolation=null",
    "callbacks.curves=null",
    "callbacks.sample_gif=null",
    "callbacks.sample_grid=null",
]


def command(run_dir: Path, mnist_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "train.py", *COMMON, f"paths.data_dir={mnist_dir}",
            f"hydra.run.dir={run_dir}", *extra]  # fmt: skip


def env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}


def run_to_end(cmd: list[str]) -> str:
    result = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    return result.stdout + result.stderr


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "zombie" in status.read_text())


def interrupt_rank(cmd: list[str], pid_dir: Path, rank: int) -> tuple[int | None, str, float]:
    """Start the job, SIGTERM rank ``rank`` only once batch :data:`SIGNAL_AFTER` is printed;
    returns the job's exit code (``None``: still running 150 s after the signal, then killed),
    everything printed, and the seconds until both ranks had ended."""
    process = subprocess.Popen(
        cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(process.stdout), daemon=True)
    reader.start()  # a hung job never closes its output: read it aside, with a deadline here
    pids, sent_at, deadline = None, None, time.monotonic() + 600
    try:
        while sent_at is None and process.poll() is None and time.monotonic() < deadline:
            for line in list(printed):
                found = re.search(r"epoch (\d+).*\| batch (\d+)/", line)
                if found and int(found.group(1)) * EPOCH + int(found.group(2)) >= SIGNAL_AFTER:
                    pids = {r: int((pid_dir / f"rank{r}.pid").read_text()) for r in (0, 1)}
                    os.kill(pids[rank], signal.SIGTERM)
                    sent_at = time.monotonic()
                    break
            time.sleep(0.05)
        assert sent_at is not None, "".join(printed)[-3000:]
        while any(alive(pid) for pid in pids.values()) and time.monotonic() - sent_at < 120:
            time.sleep(0.2)
        took = time.monotonic() - sent_at
        # /proc shows a process's leader thread as a zombie while its other threads are still
        # exiting, before waitpid can reap it: wait for the job itself (a bounded wait) instead
        # of reading poll() the instant the ranks look gone.
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        for pid in pids.values() if pids else [process.pid]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=60)
        reader.join(timeout=60)
    return code, "".join(printed), took


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs after the resume"


@pytest.fixture(scope="module")
def uninterrupted(mnist_dir, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("whole")
    run_to_end(command(run_dir, mnist_dir))
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("rank", [1, 0])
def test_sigterm_to_one_rank_stops_both_together_and_resumes_exactly(
    rank, uninterrupted, mnist_dir, tmp_path
):
    run_dir, pid_dir = tmp_path / "run", tmp_path / "pids"
    cmd = command(run_dir, mnist_dir, "+callbacks.pids._target_=tests.helpers.PidProbe",
                  f"+callbacks.pids.out_dir={pid_dir}", "+callbacks.pids.seconds_per_batch=0.2")  # fmt: skip
    code, printed, took = interrupt_rank(cmd, pid_dir, rank)
    assert took < 60, f"the ranks took {took:.0f}s to end:\n{printed[-3000:]}"
    assert code == 128 + signal.SIGTERM, printed[-3000:]
    stopped = re.findall(r"Stopped by SIGTERM after batch (\d+)", printed)
    assert len(stopped) == 1, printed[-3000:]  # said once (rank 0), for both ranks
    at = int(stopped[0])
    assert SIGNAL_AFTER <= at < STEPS
    last = run_dir / "checkpoints" / "last.ckpt"
    assert len(re.findall(rf"Saved {re.escape(str(last))} \(SIGTERM received", printed)) == 1
    saved = torch.load(last, weights_only=True)
    assert saved["gan_lightning"]["batches_seen"] == at
    streams = saved["gan_lightning"]["rng"]["torch"]
    assert streams.shape[0] == 2 and not torch.equal(streams[0], streams[1])  # one per rank

    if rank == 1:  # the same checkpoint also resumes on ONE process (rank 0's streams)
        single = tmp_path / "single"
        (single / "checkpoints").mkdir(parents=True)
        shutil.copy(last, single / "checkpoints" / "last.ckpt")
        out = run_to_end([*command(single, mnist_dir, "trainer.devices=1", "trainer.strategy=auto"),
                          "resume=auto"])  # fmt: skip
        assert f"batch {at} (epoch" in out
        assert f"Trained on {STEPS} real batches" in out

    out = run_to_end([*command(run_dir, mnist_dir), "resume=auto"])
    assert f"Resuming from {last}: batch {at}" in out
    assert_same_weights(last, uninterrupted)
