"""``<run dir>/results.json``: what a run achieved, in one small file a sweep report can read.

The sweep report (:mod:`gan_lightning.report`) needs, per job, the final and best scores,
their curves, the number of real batches, the wall time and the W&B run id. The loggers hold
those only partly (``logger=none`` keeps nothing, a W&B run is a binary file, CSV lacks the
run id), so every run writes them itself, logger or not:

.. code-block:: json

    {"status": "finished", "steps": 4295, "wall_time_s": 74.2,
     "final": {"val/fid_digits": 121.3, ...}, "best": {"val/fid_digits": 118.9, ...},
     "history": [{"step": 859, "epoch": 0, "metrics": {"val/fid_digits": 160.2, ...}}, ...],
     "wandb": {"run_id": "a1b2c3d4", "dir": ".../wandb/offline-run-..."}, "hydra": {...},
     "protocol": {"num_generated": 2000, "num_real": 2000, "split": "val", ...}}

``protocol`` is how the scores were computed (:mod:`gan_lightning.metrics.protocol`; null for
a run without scores), so two runs' numbers can be compared, or not, at a glance.

It is essential (a sweep report without it has no scores): a write that fails during training
stops the run like a failed checkpoint (docs/safety.md); it is written to a temporary file and
renamed, so a reader never sees half a file and a failed write leaves none behind. It is
rewritten after every validation (``status: running``), so a stopped or crashed job
still reports its last scores; ``status`` ends as ``finished`` or ``failed``. "final" holds
the score of the weights training ended with (the metrics callback scores them once at the
end, unless its last evaluation already saw them), "best" the best of the history. The history and
the wall time so far travel in the checkpoints, so a resumed run reports the whole run.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from gan_lightning.runtime.compat import wandb_started_run
from gan_lightning.runtime.filesystem import atomic_write_text

log = logging.getLogger(__name__)

#: Metrics where a higher value is better (Inception Score, digit classes covered, label
#: agreement, precision/recall/density/coverage); every other metric (FID, intra-class FID,
#: KID, losses) is better lower. ``*_std`` spreads get no "best".
HIGHER_IS_BETTER = (
    "val/is_*",
    "val/classes_covered*",
    "val/label_agreement*",
    "val/precision_*",
    "val/recall_*",
    "val/density_*",
    "val/coverage_*",
)


def higher_is_better(name: str) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in HIGHER_IS_BETTER)


def best_values(history: list[dict[str, Any]]) -> dict[str, float]:
    """The best value of every metric in ``history`` (NaN never wins)."""
    best: dict[str, float] = {}
    for entry in history:
        for name, value in entry["metrics"].items():
            if "_std" in name or value is None or math.isnan(value):
                continue
            if name not in best:
                best[name] = value
            elif higher_is_better(name):
                best[name] = max(best[name], value)
            else:
                best[name] = min(best[name], value)
    return best


class RunResults(pl.Callback):
    """Write ``path`` (``results.json`` in the run directory) on global rank zero.

    Args:
        path: the JSON file.
    """

    def __init__(self, path: str = "results.json") -> None:
        self.path = Path(path)
        # Wall time from building the run (data, model, loggers) to the end of training.
        self._start = time.monotonic()
        self.started_at = datetime.now().astimezone().isoformat(timespec="seconds")
        self._before = 0.0  # wall time of the run before it was resumed from a checkpoint
        self.history: list[dict[str, Any]] = []
        self._seen: dict[str, Any] = {}  # metric -> the tensor object last recorded

    def elapsed(self) -> float:
        return self._before + time.monotonic() - self._start

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "wall_time_s": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self._before = float(state_dict.get("wall_time_s", 0.0))

    def _record(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """The ``val/*`` scalars computed by this validation (an unchanged tensor object in
        ``callback_metrics`` is a value kept from an earlier one, e.g. FID every n epochs)."""
        new = {}
        for name, value in trainer.callback_metrics.items():
            if not name.startswith("val/") or not isinstance(value, torch.Tensor):
                continue
            if value.numel() != 1 or self._seen.get(name) is value:
                continue
            self._seen[name] = value
            new[name] = float(value)
        if new:
            step = int(getattr(pl_module, "batches_seen", trainer.global_step))
            self.history.append({"step": step, "epoch": int(trainer.current_epoch), "metrics": new})

    def results(self, trainer: pl.Trainer, pl_module: Any, status: str) -> dict[str, Any]:
        from gan_lightning.runtime.loggers import hydra_job

        final: dict[str, float] = {}
        for entry in self.history:
            final.update(entry["metrics"])
        return {
            "status": status,
            "started_at": self.started_at,
            "wall_time_s": round(self.elapsed(), 3),
            "steps": int(getattr(pl_module, "batches_seen", trainer.global_step)),
            "global_step": int(trainer.global_step),
            "final": final,
            "best": best_values(self.history),
            "history": self.history,
            "wandb": wandb_run(trainer),
            "hydra": hydra_job(),
            "protocol": score_protocol_of(trainer),
        }

    def write(self, trainer: pl.Trainer, pl_module: Any, status: str, **extra: Any) -> None:
        if not trainer.is_global_zero:
            return
        data = {**self.results(trainer, pl_module, status), **extra}
        atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        self._record(trainer, pl_module)
        self.write(trainer, pl_module, "running")

    def record_final(
        self, trainer: pl.Trainer, pl_module: Any, exception: BaseException | None = None
    ) -> None:
        """Record the score of the weights training ends with: asks every callback that
        offers ``score_final`` (:class:`~gan_lightning.metrics.GenerativeMetrics`) for it, so
        "final" is never an older state whichever of the two Lightning calls first."""
        for callback in trainer.callbacks:
            if callback is not self and hasattr(callback, "score_final"):
                callback.score_final(trainer, pl_module, exception)
        self._record(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.record_final(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.write(trainer, pl_module, "finished")

    def on_exception(self, trainer: pl.Trainer, pl_module: Any, exception: BaseException) -> None:
        self.record_final(trainer, pl_module, exception)
        try:
            self.write(
                trainer, pl_module, "failed", error=f"{type(exception).__name__}: {exception}"
            )
        except OSError as err:  # the disk that stopped the run: the first fault is reported
            log.warning("Could not mark %s as failed: %s", self.path, err)


def score_protocol_of(trainer: pl.Trainer) -> dict[str, Any] | None:
    """The protocol of the scores of this run: that of its metrics callback (the callback with
    a ``protocol``), once it has scored."""
    for callback in trainer.callbacks:
        protocol = getattr(callback, "protocol", None)
        if isinstance(protocol, dict):
            return protocol
    return None


def wandb_run(trainer: pl.Trainer) -> dict[str, str] | None:
    """Id and offline directory of the W&B run this Trainer logs to, if it started one."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in trainer.loggers:
        run = wandb_started_run(logger) if isinstance(logger, WandbLogger) else None
        if run is not None:
            offline_dir = getattr(logger, "offline_dir", None)
            return {"run_id": str(run.id), "dir": str(offline_dir) if offline_dir else None}
    return None
