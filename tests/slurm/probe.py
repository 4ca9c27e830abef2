"""Callbacks the Slurm tests add to real training jobs (``+callbacks.<name>._target_=...``).

A Slurm job runs in other processes, on other "nodes", possibly twice (requeue): the only way
for a test to see what happened inside it is what the job leaves on disk. These callbacks
write exactly that, and nothing else: they never change training.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch


def slurm_restart_count() -> int:
    """0 for a job's first run, n after its n-th requeue (Slurm sets it in every task)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)


class RankProbe(pl.Callback):
    """Every rank writes ``<out_dir>/rank<global rank>.pt`` at the end of training: who it was
    (Lightning's ranks next to Slurm's, node, cluster environment, pid), how far it trained
    and its weights, so a test can check that DDP under srun kept the ranks in sync."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        env = getattr(trainer.strategy, "cluster_environment", None)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "global_rank": trainer.global_rank,
                "local_rank": trainer.local_rank,
                "node_rank": trainer.node_rank,
                "world_size": trainer.world_size,
                "slurm_procid": os.environ.get("SLURM_PROCID"),
                "slurm_node": os.environ.get("SLURMD_NODENAME"),
                "cluster_environment": type(env).__name__ if env is not None else None,
                "strategy": type(trainer.strategy).__name__,
                "pid": os.getpid(),
                "batches_seen": getattr(pl_module, "batches_seen", None),
                "global_step": trainer.global_step,
                "state_dict": {k: v.detach().cpu() for k, v in pl_module.state_dict().items()},
            },
            self.out_dir / f"rank{trainer.global_rank}.pt",
        )


class PreemptionProbe(pl.Callback):
    """Makes a tiny run last long enough to be signalled mid-run, and records each run of the
    job (first run and requeued runs) as JSON lines in ``<out_dir>/batches.jsonl``.

    * ``on_train_start``: one ``start`` line with the batch count training resumes from;
    * after every batch: one ``batch`` line, then ``seconds_per_batch`` of sleep;
    * on the first run, after batch ``signal_at``: ``<out_dir>/ready`` holds the Slurm job id,
      the test's cue to send the signal while the job is surely mid-run.
    """

    def __init__(self, out_dir: str, signal_at: int, seconds_per_batch: float) -> None:
        self.out_dir = Path(out_dir)
        self.signal_at = int(signal_at)
        self.seconds_per_batch = float(seconds_per_batch)

    def _record(self, event: str, pl_module: pl.LightningModule, trainer: pl.Trainer) -> None:
        line = {
            "event": event,
            "restart": slurm_restart_count(),
            "batches_seen": getattr(pl_module, "batches_seen", None),
            "global_step": trainer.global_step,
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "batches.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record("start", pl_module, trainer)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        self._record("batch", pl_module, trainer)
        if slurm_restart_count() == 0 and getattr(pl_module, "batches_seen", 0) == self.signal_at:
            (self.out_dir / "ready").write_text(os.environ.get("SLURM_JOB_ID", ""))
        time.sleep(self.seconds_per_batch)
