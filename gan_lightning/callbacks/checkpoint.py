"""Checkpoints that never lose work: periodic ``last.ckpt`` in real batches, a checkpoint on
preemption signals, and atomic writes.

* :class:`ModelCheckpoint` is Lightning's, with ``every_n_train_steps`` counted in real batches
  (the project's step unit; Lightning counts optimizer steps, of which a GAN makes two per
  batch) writing ``last.ckpt``, so a kill loses at most that many batches. On SIGTERM or
  SIGUSR1 (a scheduler's preemption notice, ``kill``, Ctrl-\\ of a job) it writes
  ``last.ckpt`` after the current batch and stops the process with exit code 128 + signal;
  ``python train.py ... resume=auto`` continues from it at the next batch. When training
  ends (``max_steps`` mid-epoch too) ``last.ckpt`` holds the final weights. Under DDP the
  signal may reach one rank only: the handler just notes it, and at every batch boundary the
  ranks all-reduce their flags, so all of them save (once) and stop after the same batch.
  Under SLURM with Lightning's auto-requeue, SIGUSR1 stays Lightning's (it saves
  ``hpc_ckpt_<n>.ckpt`` and requeues the job), called at that agreed batch on every rank.
* Every checkpoint is written atomically by
  :class:`gan_lightning.runtime.checkpoints.AtomicCheckpointIO` (a Trainer plugin).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint as LightningModelCheckpoint
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException

from gan_lightning.errors import ConfigError

log = logging.getLogger(__name__)


#: Signals that mean "save and stop" (SIGTERM: preemption, `kill`; SIGUSR1: schedulers'
#: advance notice, e.g. `sbatch --signal=USR1@60`).
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint, with ``every_n_train_steps`` in real batches (written to
    ``last.ckpt``) and a checkpoint on SIGTERM/SIGUSR1 before the process stops."""

    def __init__(self, *args: Any, every_n_train_steps: int | None = None, **kwargs: Any) -> None:
        if every_n_train_steps is not None and int(every_n_train_steps) < 0:
            raise ConfigError(
                f"callbacks.model_checkpoint.every_n_train_steps={every_n_train_steps} must be "
                ">= 0 (real batches between last.ckpt saves; 0 or null: only at epoch ends)."
            )
        super().__init__(*args, **kwargs)
        self.every_n_batches = int(every_n_train_steps or 0)
        self._pending: set[int] = set()  # signals noted by the handler, not yet acted on
        self._requeue: Any = None  # Lightning's SLURM requeue handler, when it had SIGUSR1
        self._saved_at: int | None = None
        self._state_saved_at: int | None = None  # real batch of the latest checkpoint of any kind

    @property
    def last_path(self) -> Path:
        return Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"

    def write_last(self, trainer: pl.Trainer, why: str) -> Path:
        """Write ``last.ckpt`` now (every rank takes part; rank 0 writes)."""
        path = self.last_path
        self.last_model_path = str(path)  # before saving, as Lightning does: the file holds it
        trainer.save_checkpoint(path, weights_only=self.save_weights_only)
        self._saved_at = int(trainer.lightning_module.batches_seen)
        rank_zero_info(f"Saved {path} ({why}, batch {self._saved_at})")
        return path

    # ------------------------------------------------------------------ signals
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Take over SIGTERM and SIGUSR1 (registered here, after Lightning's own handlers).

        A handler only notes the signal; the ranks agree on it at the next batch boundary
        (:meth:`_agreed_signal`) and then save and stop together. Lightning's SIGTERM handler
        instead broadcasts from inside the handler, on whichever rank got the signal, and its
        loop stops the ranks at different batches: a save (collectives) on one rank while the
        other trains hangs both until the timeout. Under SLURM auto-requeue, Lightning's
        SIGUSR1 handler (save ``hpc_ckpt`` + ``scontrol requeue``) is kept and called at the
        agreed batch on every rank, instead of inside the handler."""
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGUSR1)
        self._requeue = current if callable(current) and current != self._note_signal else None
        for signum in PREEMPTION_SIGNALS:
            signal.signal(signum, self._note_signal)

    def _note_signal(self, signum: int, frame: Any) -> None:
        # Nothing else here: a signal handler runs between two bytecodes, maybe mid-collective.
        self._pending.add(int(signum))

    def _agreed_signal(self, trainer: pl.Trainer) -> int | None:
        """The signal every rank acts on at this batch boundary (SIGTERM over SIGUSR1), from
        one small all-reduce of the ranks' flags; ``None``: carry on."""
        flags = [int(signum in self._pending) for signum in PREEMPTION_SIGNALS]
        if trainer.received_sigterm:  # noted by Lightning before on_train_start took over
            flags[0] = 1
        if trainer.world_size > 1:
            import torch

            summed = trainer.strategy.reduce(
                torch.tensor(flags, device=trainer.strategy.root_device), reduce_op="sum"
            )
            flags = [int(v) for v in summed.tolist()]
        for signum, flag in zip(PREEMPTION_SIGNALS, flags, strict=True):
            if flag:
                self._pending.discard(int(signum))
                return int(signum)
        return None

    def _stop(self, trainer: pl.Trainer, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._saved_at != trainer.lightning_module.batches_seen:
            self.write_last(trainer, f"{name} received")
        rank_zero_info(
            f"Stopped by {name} after batch {trainer.lightning_module.batches_seen}; continue "
            f"with the same command plus resume=auto (or ckpt_path={self.last_path})."
        )
        raise SIGTERMException(128 + int(signum))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        # A resumed run continues in its own directory and owns its last.ckpt, even when the
        # checkpoint it resumed from predates that file (Slurm's hpc_ckpt, saved before the
        # requeue's SIGTERM wrote last.ckpt): otherwise Lightning would write last-v1.ckpt.
        if self.save_last and self.dirpath is not None and self.last_path.is_file():
            self.last_model_path = str(self.last_path)

    # ------------------------------------------------------------------ hooks
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._state_saved_at = int(pl_module.batches_seen)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        # Lightning writes last.ckpt at the end only if it never wrote one: a run stopped by
        # max_steps mid-epoch would keep an older state there than the one it ends with (and
        # that the metrics callback scores as the run's final result).
        if self.save_last and self.dirpath is not None:
            if self._state_saved_at != pl_module.batches_seen:
                self.write_last(trainer, "end of training")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        signum = self._agreed_signal(trainer)
        if signum == signal.SIGUSR1 and self._requeue is not None:
            self._requeue(signum, None)  # Lightning's SLURM requeue, on every rank at once
        elif signum is not None:
            self._stop(trainer, signum)
        if self.every_n_batches and pl_module.batches_seen % self.every_n_batches == 0:
            self.write_last(trainer, f"every {self.every_n_batches} batches")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.save_on_stop(trainer, pl_module, exception)

    def save_on_stop(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """``last.ckpt`` when a SIGTERM stops training between two batches; once (a second
        call is a no-op), so a slower ``on_exception`` (the final score) may call it first."""
        # A SIGTERM that came before on_train_start took the handlers over: Lightning's loop
        # stops every rank at the same batch (its flag is broadcast from rank 0); the state is
        # between two batches, save it.
        if isinstance(exception, SIGTERMException) and trainer.received_sigterm:
            if self._saved_at != pl_module.batches_seen and self.dirpath is not None:
                self.write_last(trainer, "SIGTERM received")
