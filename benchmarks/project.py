"""The project's path: ``gan_lightning.train.run`` itself, timed by a callback.

:func:`time_project` composes the case's config like ``train.py`` does, adds
:class:`StepTimer` as one more entry under ``callbacks`` and calls ``gan_lightning.train.run``:
the real Trainer, LightningModule, DataModule, default callbacks, metrics callback and logger,
built by the project's own ``build``. Only the budget is the benchmark's: the timer stops the
run (``trainer.should_stop``) after its window, always inside the first epoch, and validation is
off (``trainer.limit_val_batches=0``) because periodic evaluation is measured on its own
(:mod:`benchmarks.default_run`).

The clock is the wall time between consecutive ``on_train_batch_end`` calls of the timer, so
each interval holds exactly one batch's worth of everything the framework does: fetching the
batch, the hooks, ``training_step``, logging, every callback and the logger.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import open_dict

from benchmarks.cases import Case, compose_config
from benchmarks.plain import Timing

#: The StepTimer of the latest run (Hydra instantiates it; the benchmark reads it back here).
LAST_TIMER: list[StepTimer] = []

#: Project variants: the overrides that make them, on top of a case's overrides.
PROJECT_VARIANTS: dict[str, tuple[str, ...]] = {
    # `python train.py` as a user runs it: default callbacks (checkpoints, sample grids,
    # curves, learning rates, progress as log lines), FID/KID metrics, W&B logger (offline).
    "project": ("callbacks.progress.style=lines", "logger.wandb.mode=offline"),
    # One part of the default off at a time (what each costs).
    "project_nologger": ("callbacks.progress.style=lines", "logger=none"),
    "project_nometrics": (
        "callbacks.progress.style=lines",
        "logger.wandb.mode=offline",
        "metrics=none",
    ),
    "project_nocallbacks": (
        "~callbacks",
        "logger.wandb.mode=offline",
        "trainer.enable_progress_bar=false",
        "+trainer.enable_checkpointing=false",
    ),
    # The framework alone: no callbacks, no metrics, no logger, no progress bar, no
    # checkpointing, no model summary.
    "project_bare": (
        "~callbacks",
        "metrics=none",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "+trainer.enable_checkpointing=false",
    ),
}


class StepTimer(pl.Callback):
    """Times training batches after ``warmup_steps``; stops the run after ``seconds``.

    Records the time from construction (just before ``Trainer.fit``) to the end of the first
    batch (``startup_s``) and the wall time of the timed batches.
    """

    def __init__(
        self,
        warmup_steps: int = 20,
        seconds: float = 3.0,
        min_steps: int = 5,
        synchronize: bool = False,
    ) -> None:
        #: CUDA: wait for the GPU where the timed window starts and ends.
        self.synchronize = bool(synchronize)
        self.warmup_steps = max(1, int(warmup_steps))
        self.seconds = float(seconds)
        self.min_steps = int(min_steps)
        self.created = time.perf_counter()
        self.first_batch_end: float | None = None
        self.last: float | None = None
        self.batches = 0
        self.step_seconds: list[float] = []
        self.cpu_start = 0.0
        self.cpu_seconds = 0.0
        self.batch_size = 0
        LAST_TIMER[:] = [self]

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.synchronize and self.batches + 1 == self.warmup_steps:
            self._wait_for_device()  # the window starts with an idle device
        now = time.perf_counter()
        self.batches += 1
        if self.batches == 1:
            self.first_batch_end = now
            self.batch_size = int(batch[0].shape[0])
        if self.batches > self.warmup_steps:
            self.step_seconds.append(now - self.last)
            self.cpu_seconds = time.process_time() - self.cpu_start
        elif self.batches == self.warmup_steps:
            self.cpu_start = time.process_time()
        self.last = now
        if self.batches <= self.warmup_steps:
            return
        last_in_epoch = batch_idx + 2 >= trainer.num_training_batches
        enough = len(self.step_seconds) >= self.min_steps
        if last_in_epoch or (enough and sum(self.step_seconds) >= self.seconds):
            trainer.should_stop = True
            if self.synchronize:  # the work still queued belongs to the window's last step
                self._wait_for_device()
                self.step_seconds[-1] += time.perf_counter() - now

    @staticmethod
    def _wait_for_device() -> None:
        import torch

        torch.cuda.synchronize()


def time_project(
    case: Case,
    variant: str = "project",
    extra_overrides: tuple[str, ...] = (),
    seconds: float = 3.0,
    min_steps: int = 5,
    output_root: str | Path | None = None,
    stock_lightning: bool = False,
    device: str = "cpu",
) -> Timing:
    """One run of ``gan_lightning.train.run`` on ``case`` (+ ``variant``), timed.

    ``stock_lightning``: without :func:`gan_lightning.runtime.compat.speed_up_lightning` (which
    ``run`` applies), to measure what it is worth.
    """
    from gan_lightning import train
    from gan_lightning.runtime import compat

    overrides = [
        *case.overrides,
        *PROJECT_VARIANTS[variant],
        *extra_overrides,
        "trainer.limit_val_batches=0",
        "trainer.max_epochs=1",
        *(["trainer.accelerator=gpu", "trainer.devices=1"] if device != "cpu" else []),
    ]
    with tempfile.TemporaryDirectory(dir=output_root, prefix=f"bench_{case.name}_") as out:
        cfg = compose_config(overrides, out)
        with open_dict(cfg):
            if cfg.get("callbacks") is None:
                cfg.callbacks = {}
            cfg.callbacks.bench_timer = {
                "_target_": f"{__name__}.StepTimer",
                "warmup_steps": case.warmup_steps,
                "seconds": seconds,
                "min_steps": min_steps,
                "synchronize": device != "cpu",
            }
        LAST_TIMER.clear()
        speed_up = train.speed_up_lightning
        if stock_lightning:
            train.speed_up_lightning = lambda: compat.speed_up_lightning(enabled=False)
        try:
            train.run(cfg)
        finally:
            train.speed_up_lightning = speed_up
        timer = LAST_TIMER[0]
    if not timer.step_seconds:
        raise RuntimeError(f"{case.name}/{variant}: no batch was timed (epoch too short?)")
    startup = (timer.first_batch_end or timer.created) - timer.created
    return Timing.from_steps(timer.step_seconds, timer.cpu_seconds, timer.batch_size, startup)
