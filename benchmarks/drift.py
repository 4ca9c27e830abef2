"""Why a run slows down after its first epoch: the same batches profiled in every epoch.

    python -m benchmarks.drift [--terminal] [--epochs 3] [--batches 300] [-- train.py overrides]
    python -m benchmarks.drift --matrix [--epochs 3]     # the A/B matrix, full epochs

Runs ``train.py`` (the default experiment unless overrides say otherwise) with
:class:`EpochProfile`, which profiles batches ``start .. start + count`` of *every* epoch with
cProfile and keeps, per epoch, the Python function calls per batch, the profiled seconds per
batch, and the functions whose time per batch grew most against epoch 0. Function-call counts
do not depend on how busy the machine is, so a per-batch cost that grows epoch after epoch
shows here even when wall-clock rates are too noisy to tell. ``--terminal`` runs under a
pseudo-terminal, as ``make train`` typed at a shell does (rich progress bar).

``--matrix`` instead runs the default experiment with full epochs under each variant of
:data:`MATRIX` (one process each, alternating, ``--repeats`` times) and prints the training
throughput of every epoch: which change makes the drop after epoch 0 go away.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


def _per_function(profile: cProfile.Profile) -> dict[str, tuple[int, float]]:
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    return {
        f"{Path(key[0]).name}:{key[1]}({key[2]})": (int(value[1]), float(value[2]))
        for key, value in stats.items()
    }


class EpochProfile(pl.Callback):
    """cProfile over the same batch indices of every epoch; JSON summary written to ``out``."""

    def __init__(self, out: str, start: int = 100, count: int = 100) -> None:
        self.out = out
        self.start = int(start)
        self.count = int(count)
        self.profile: cProfile.Profile | None = None
        self.began = 0.0
        self.epochs: list[dict[str, Any]] = []
        self.functions: list[dict[str, tuple[int, float]]] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, idx: int):
        if idx == self.start:
            self.profile = cProfile.Profile()
            self.began = time.process_time()
            self.profile.enable()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        idx = args[-1]
        if self.profile is None or idx != self.start + self.count - 1:
            return
        self.profile.disable()
        cpu = time.process_time() - self.began
        functions = _per_function(self.profile)
        self.profile = None
        self.functions.append(functions)
        self.epochs.append(
            {
                "epoch": int(trainer.current_epoch),
                "calls_per_batch": sum(n for n, _ in functions.values()) / self.count,
                "cpu_ms_per_batch": 1000 * cpu / self.count,
                "progress_bar_metrics": len(
                    getattr(trainer.progress_bar_callback, "_shown", {}) or {}
                ),
                "callback_metrics": len(trainer.callback_metrics),
            }
        )
        self.write()

    def growth(self, epoch_index: int, top: int = 15) -> list[dict[str, Any]]:
        """Functions whose own time per batch grew most from epoch 0 to ``epoch_index``."""
        first, later = self.functions[0], self.functions[epoch_index]
        rows = []
        for name, (calls, tottime) in later.items():
            calls0, tottime0 = first.get(name, (0, 0.0))
            rows.append(
                {
                    "function": name,
                    "calls_per_batch": (calls0 / self.count, calls / self.count),
                    "ms_per_batch": (1000 * tottime0 / self.count, 1000 * tottime / self.count),
                    "grew_ms": 1000 * (tottime - tottime0) / self.count,
                }
            )
        rows.sort(key=lambda r: r["grew_ms"], reverse=True)
        return rows[:top]

    def write(self) -> None:
        summary = {
            "epochs": self.epochs,
            "growth": {str(e["epoch"]): self.growth(i) for i, e in enumerate(self.epochs) if i > 0},
        }
        Path(self.out).write_text(json.dumps(summary, indent=1))


#: Variants of ``python train.py`` for ``--matrix``: (name, overrides, under a terminal).
MATRIX: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("default (log lines)", (), False),
    ("default at a terminal (rich bar)", (), True),
    ("metrics=none (no evaluation)", ("metrics=none",), False),
    ("logger=none", ("logger=none",), False),
    ("num_threads=2 set at start", ("num_threads=2",), False),
)


def matrix(epochs: int, repeats: int, threads: int | None) -> None:
    from benchmarks.default_run import run_default

    for repeat in range(repeats):
        for name, overrides, terminal in MATRIX:
            record = run_default(
                [f"trainer.max_epochs={epochs}", *overrides], threads=threads, terminal=terminal
            )
            rates = " ".join(f"{e['train_batches_per_s']:5.1f}" for e in record["epochs"])
            cpu = " ".join(f"{e['train_batches_per_cpu_s']:5.1f}" for e in record["epochs"])
            print(
                f"[{repeat}] {name:34s} batches/s per epoch: {rates}   per CPU s: {cpu}   "
                f"eval {record['evaluation_s']:.1f} s of {record['wall_s']:.0f} s",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    from benchmarks.default_run import run_default

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminal", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=300, help="batches per epoch")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--matrix", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    if args.matrix:
        matrix(args.epochs, args.repeats, args.threads)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_drift_") as tmp:
        out = Path(tmp) / "drift.json"
        overrides = [
            f"trainer.max_epochs={args.epochs}",
            f"trainer.limit_train_batches={args.batches}",
            "+callbacks.bench_drift._target_=benchmarks.drift.EpochProfile",
            f"+callbacks.bench_drift.out={out}",
            f"+callbacks.bench_drift.start={args.batches // 3}",
            f"+callbacks.bench_drift.count={args.batches // 3}",
            *args.overrides,
        ]
        record = run_default(overrides, threads=args.threads, terminal=args.terminal)
        summary = json.loads(out.read_text())
    for epoch, probe in zip(record["epochs"], summary["epochs"], strict=False):
        print(
            f"epoch {epoch['epoch']}: {epoch['train_batches_per_s']:.1f} batches/s wall, "
            f"{epoch['train_batches_per_cpu_s']:.1f} per CPU s; profiled: "
            f"{probe['calls_per_batch']:.0f} Python calls/batch, "
            f"{probe['cpu_ms_per_batch']:.1f} CPU ms/batch, "
            f"{probe['callback_metrics']} callback metrics"
        )
    for epoch, rows in summary["growth"].items():
        print(f"\ngrew from epoch 0 to epoch {epoch} (ms per batch, own time):")
        for row in rows[:10]:
            c0, c1 = row["calls_per_batch"]
            t0, t1 = row["ms_per_batch"]
            print(
                f"  {row['grew_ms']:+7.3f}  {t0:7.3f} -> {t1:7.3f}  calls {c0:g} -> {c1:g}  {row['function']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
