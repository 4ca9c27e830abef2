"""Progress: a rich bar with the losses for people at a terminal, plain lines for CI logs.

A live progress bar redrawn a thousand times is unreadable in a log file (CI, ``nohup``,
SLURM), so :func:`progress_bar` picks by whether stdout is a terminal:

* terminal: Lightning's ``RichProgressBar`` showing ``d_loss``/``g_loss`` (short names, no
  ``v_num``), metrics refreshed every ``refresh_rate`` batches (each refresh reads the
  values back from the device);
* otherwise: :class:`LogLinesProgressBar`, one log line every ``log_every_n_batches``
  batches and one per epoch with the epoch's train and validation metrics.

``style: rich | lines`` forces either. ``trainer.enable_progress_bar=false`` gives no bar
(the factory returns ``None``, which ``train.instantiate_callbacks`` skips).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from datetime import timedelta
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar

from gan_lightning.errors import ConfigError

log = logging.getLogger(__name__)

PROGRESS_STYLES = ("auto", "rich", "lines")


def short_metrics(metrics: dict[str, Any], training: bool = True) -> dict[str, Any]:
    """Progress-bar names: ``train/d_loss_step`` -> ``d_loss``; epoch means and ``v_num``
    dropped while training (the bar shows the current values)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if key == "v_num" or (training and key.endswith("_epoch")):
            continue
        name = key.removeprefix("train/").removesuffix("_step")
        out[name] = value
    return out


def module_values(pl_module: Any) -> dict[str, float]:
    """The values the module shows in progress bars, as host numbers it read back at its
    last logging step (:meth:`GenerativeModule.log_train`): Lightning would convert
    ``prog_bar`` tensors to numbers after *every* batch, a host sync each."""
    return dict(getattr(pl_module, "progress_values", None) or {})


def _fmt(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item()
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class MetricsRichProgressBar(RichProgressBar):
    """``RichProgressBar`` with short metric names, read back only every ``refresh_rate``
    batches instead of on every batch.

    Reading the bar's metrics converts every logged tensor to a Python number, a host sync
    per metric per batch; between refreshes the bar shows the values it read last.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: dict[str, Any] = {}

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        done = int(getattr(pl_module, "batches_seen", trainer.global_step))
        if not trainer.training or not self._shown or done % max(1, self.refresh_rate) == 0:
            metrics = {**super().get_metrics(trainer, pl_module), **module_values(pl_module)}
            self._shown = short_metrics(metrics)
        return self._shown


class LogLinesProgressBar(ProgressBar):
    """Plain, periodic log lines: readable in CI logs and files, no carriage returns."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        return {**super().get_metrics(trainer, pl_module), **module_values(pl_module)}

    def __init__(self, log_every_n_batches: int = 200) -> None:
        super().__init__()
        if log_every_n_batches < 1:
            raise ConfigError(
                f"callbacks.progress.log_every_n_batches must be >= 1; got {log_every_n_batches}."
            )
        self.log_every_n_batches = int(log_every_n_batches)
        self._enabled = True
        self._epoch_start = 0.0

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _epoch_label(self, trainer: pl.Trainer) -> str:
        total = (
            f"/{trainer.max_epochs - 1}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        )
        return f"epoch {trainer.current_epoch}{total}"

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.monotonic()
        self._epoch_total = self._batches_this_epoch(trainer, pl_module)

    @staticmethod
    def _batches_this_epoch(trainer: pl.Trainer, pl_module: Any) -> int | float:
        """Batches the epoch will train on: the loader's length, or fewer when ``max_steps``
        ends the run inside it. Lightning's own ``total_train_batches`` mixes units here (its
        ``max_steps`` counts optimizer steps, several per real batch in a GAN)."""
        total = trainer.num_training_batches
        if trainer.max_steps is None or trainer.max_steps < 0:
            return total
        steps_for = getattr(pl_module, "optimizer_steps_for", lambda n: n)
        per_batch = steps_for(1000) / 1000 or 1.0
        remaining = math.ceil(max(trainer.max_steps - trainer.global_step, 0) / per_batch)
        return min(total, remaining)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        done = batch_idx + 1
        if not self._enabled or done % self.log_every_n_batches != 0:
            return
        total = getattr(self, "_epoch_total", None) or self.total_train_batches
        elapsed = max(time.monotonic() - self._epoch_start, 1e-9)
        rate = done / elapsed
        parts = [self._epoch_label(trainer)]
        if isinstance(total, int) or (isinstance(total, float) and total != float("inf")):
            total = int(total)
            eta = timedelta(seconds=int(max(total - done, 0) / rate))
            parts.append(f"batch {done}/{total} ({100 * done / max(total, 1):.0f}%)")
            parts.append(f"{rate:.1f} batch/s, eta {eta}")
        else:
            parts.append(f"batch {done}")
        values = short_metrics(self.get_metrics(trainer, pl_module))
        if values:
            parts.append(" ".join(f"{k}={_fmt(v)}" for k, v in values.items()))
        log.info(" | ".join(parts))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled:
            return
        elapsed = time.monotonic() - self._epoch_start
        metrics = trainer.callback_metrics
        train = {
            k.removeprefix("train/").removesuffix("_epoch"): v
            for k, v in metrics.items()
            if k.startswith("train/") and k.endswith("_epoch")
        }
        val = {k: v for k, v in metrics.items() if k.startswith("val/")}
        parts = [f"{self._epoch_label(trainer)} done in {elapsed:.1f}s"]
        if train:
            parts.append("train " + " ".join(f"{k}={_fmt(v)}" for k, v in train.items()))
        if val:
            parts.append(" ".join(f"{k}={_fmt(v)}" for k, v in val.items()))
        log.info(" | ".join(parts))


def progress_bar(
    enabled: bool = True,
    style: str = "auto",
    refresh_rate: int = 10,
    log_every_n_batches: int = 200,
    stream: Any = None,
) -> ProgressBar | None:
    """The progress callback for this run (``None`` when progress bars are disabled)."""
    if style not in PROGRESS_STYLES:
        raise ConfigError(
            f"callbacks.progress.style={style!r} is not known; choose one of {list(PROGRESS_STYLES)}."
        )
    if not enabled:
        return None
    if style == "auto":
        stream = stream if stream is not None else sys.stdout
        style = "rich" if getattr(stream, "isatty", lambda: False)() else "lines"
    if style == "rich":
        return MetricsRichProgressBar(refresh_rate=max(1, int(refresh_rate)))
    return LogLinesProgressBar(log_every_n_batches=log_every_n_batches)
