"""Checkpoints that never lose work: atomic writes survive a kill mid-save, last.ckpt every N
real batches, a bad every_n_train_steps is a config error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_lightning.callbacks.checkpoint import ModelCheckpoint
from gan_lightning.errors import ConfigError
from gan_lightning.runtime.checkpoints import AtomicCheckpointIO

SLOW_SAVE = """
import sys, time, torch
from gan_lightning.runtime.checkpoints import AtomicCheckpointIO

target = sys.argv[1]
real_save = torch.save

def slow_save(obj, handle, *args, **kwargs):
    # Write half, announce, then hang: the test kills us in the middle of a save.
    import io
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    handle.write(data[: len(data) // 2])
    handle.flush()
    print("saving", flush=True)
    time.sleep(600)
    handle.write(data[len(data) // 2 :])

torch.save = slow_save
AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.full((1000,), 2.0)}}, target)
"""


def test_a_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(1000)}}, target)
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout.readline().strip() == "saving"
    partial = list(tmp_path.glob(".last.ckpt.tmp-*"))
    assert partial and partial[0].stat().st_size > 0  # half a checkpoint is on disk ...
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    survivor = torch.load(target, weights_only=True)  # ... but last.ckpt is the old one, whole
    assert torch.equal(survivor["state_dict"]["w"], torch.ones(1000))
    # The next save (another process) clears the dead one's temporary file and replaces it.
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, target)
    assert not list(tmp_path.glob(".last.ckpt.tmp-*"))
    assert torch.equal(torch.load(target, weights_only=True)["state_dict"]["w"], torch.zeros(3))


def test_a_failed_save_removes_its_temporary_file(tmp_path, monkeypatch):
    def broken(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint({"x": 1}, tmp_path / "a.ckpt")
    assert not list(tmp_path.iterdir())


def test_last_ckpt_every_n_real_batches(tmp_path):
    import pytorch_lightning as pl

    from tests.helpers import tensor_loader, tiny_gan

    saved = []

    class Watch(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            path = tmp_path / "last.ckpt"
            if path.is_file():
                saved.append(torch.load(path, weights_only=True)["gan_lightning"]["batches_seen"])

    model = tiny_gan(d_steps=3)  # 4 optimizer steps per 3 batches: batches, not steps, count
    model.run_config = {"model": {"_target_": "gan_lightning.modules.gan.GAN"}}
    checkpoint = ModelCheckpoint(dirpath=str(tmp_path), every_n_train_steps=4, every_n_epochs=None)
    trainer = pl.Trainer(
        max_steps=model.optimizer_steps_for(9),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[checkpoint, Watch()],
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(model, tensor_loader())
    assert sorted(set(saved)) == [4, 8]
    with pytest.raises(ConfigError, match="every_n_train_steps"):
        ModelCheckpoint(every_n_train_steps=-1)


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "last.ckpt"
    dead = tmp_path / f".last.ckpt.tmp-{2**22 + 12345}"  # no such pid
    dead.write_bytes(b"half")
    mine = tmp_path / f".other.ckpt.tmp-{os.getpid()}"  # another target: left alone
    mine.write_bytes(b"x")
    AtomicCheckpointIO().save_checkpoint({"a": torch.ones(1)}, target)
    assert not dead.exists() and mine.exists()


def test_a_resumed_run_keeps_writing_its_own_last_ckpt(tmp_path):
    """Slurm's hpc_ckpt is saved before the requeue's SIGTERM writes last.ckpt, so its
    callback state names no last file; the resumed run must still overwrite last.ckpt, not
    start last-v1.ckpt beside it."""
    callback = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    (tmp_path / "last.ckpt").write_bytes(b"from before the requeue")
    state = {"dirpath": str(tmp_path), "best_model_score": None, "best_model_path": ""}
    callback.load_state_dict({**state, "last_model_path": ""})
    assert callback.last_model_path == str(tmp_path / "last.ckpt")
    fresh = ModelCheckpoint(dirpath=tmp_path / "other", save_last=True)
    fresh.load_state_dict({**state, "dirpath": str(tmp_path / "other"), "last_model_path": ""})
    assert fresh.last_model_path == ""  # nothing of its own yet: Lightning's behaviour


class OtherRank:
    """A strategy whose ``reduce`` adds the flags another rank sends (the all-reduce)."""

    root_device = torch.device("cpu")

    def __init__(self, other: list[int]) -> None:
        self.other = torch.tensor(other)
        self.calls = 0

    def reduce(self, tensor, reduce_op="mean"):
        assert reduce_op == "sum"
        self.calls += 1
        return tensor + self.other


def fake_ddp_trainer(other: list[int]):
    from types import SimpleNamespace

    return SimpleNamespace(world_size=2, received_sigterm=False, strategy=OtherRank(other))


def test_a_signal_on_one_rank_is_acted_on_by_every_rank_at_the_same_batch():
    """The handler only notes the signal; at the batch boundary the ranks add up their flags,
    so a rank that got nothing stops too, and one that got it waits for the agreement."""
    callback = ModelCheckpoint(dirpath="unused")
    callback._note_signal(signal.SIGTERM, None)  # this rank got SIGTERM ...
    assert callback._pending == {signal.SIGTERM}  # ... and nothing else happened yet
    assert callback._agreed_signal(fake_ddp_trainer([0, 0])) == signal.SIGTERM
    assert callback._pending == set()  # acted on once
    # The other rank got SIGUSR1: this one, signal-free, learns it from the all-reduce.
    trainer = fake_ddp_trainer([0, 1])
    assert callback._agreed_signal(trainer) == signal.SIGUSR1 and trainer.strategy.calls == 1
    assert callback._agreed_signal(fake_ddp_trainer([0, 0])) is None
