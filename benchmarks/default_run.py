"""The default run as users launch it (``python train.py``), observed from the inside.

:func:`run_default` starts ``train.py`` in a subprocess with one extra callback,
:class:`RunProbe` (``+callbacks.bench_probe._target_=...``: nothing else changes), which
records

* training throughput per epoch, from the first to the last batch end of the epoch (no
  validation, no epoch-end work inside), per wall second and per CPU second of the process,
  and per segment of ``segment`` batches, so a drop inside an epoch shows too;
* the wall time of every validation pass (the val loop plus the FID/KID/IS evaluation in
  ``on_validation_epoch_end``) and of the epoch-end work (pictures, checkpoints);
* per epoch, what the drift hypotheses need: resident memory, intra-op threads, denormal
  values in the parameters and in the optimizers' state, the length of the curves
  callback's series.

The share of periodic evaluation is the validation time over the run's wall time.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from benchmarks.cases import REPO, child_env, data_dir


def minor_page_faults() -> int:
    """Minor page faults of this process so far (a fresh page touched: allocator churn)."""
    try:
        text = Path("/proc/self/stat").read_text()
        return int(text[text.rindex(")") + 2 :].split()[7])
    except (OSError, ValueError, IndexError):
        return 0


def rss_mb() -> float:
    """Resident set size now (MB), from /proc (peak RSS where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _proc_cpu_seconds(stat_path: Path) -> tuple[str, float]:
    """(name, user + system CPU seconds) of a /proc/<pid>[/task/<tid>]/stat entry."""
    text = stat_path.read_text()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return name, (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def cpu_by_thread_and_child() -> dict[str, float]:
    """CPU seconds so far of every thread of this process and of every descendant process
    (the W&B service, DataLoader workers), keyed ``thread:<name>:<tid>`` /
    ``child:<name>:<pid>``; empty where /proc is missing."""
    out: dict[str, float] = {}
    # Python threads by their Python name (rich's refresh thread, W&B's, ...); the others are
    # native: the main thread's OpenMP workers and library threads.
    python_names = {t.native_id: t.name for t in threading.enumerate()}
    with contextlib.suppress(OSError, ValueError, IndexError):
        for task in Path("/proc/self/task").iterdir():
            name, seconds = _proc_cpu_seconds(task / "stat")
            name = python_names.get(int(task.name), f"native {name}")
            out[f"thread:{name}:{task.name}"] = seconds
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                    parents.setdefault(ppid, []).append(int(entry.name))
        todo = list(parents.get(os.getpid(), []))
        while todo:
            pid = todo.pop()
            todo += parents.get(pid, [])
            with contextlib.suppress(OSError, ValueError, IndexError):
                name, seconds = _proc_cpu_seconds(Path(f"/proc/{pid}/stat"))
                out[f"child:{name}:{pid}"] = seconds
    return out


def denormal_fraction(tensors: list[torch.Tensor]) -> float:
    """Share of float32 values that are subnormal (nonzero, |x| < 2^-126)."""
    tiny = torch.finfo(torch.float32).tiny
    count = total = 0
    for t in tensors:
        if t.dtype != torch.float32:
            continue
        a = t.detach().abs()
        count += int(((a > 0) & (a < tiny)).sum())
        total += a.numel()
    return count / max(total, 1)


class RunProbe(pl.Callback):
    """Timestamps and per-epoch state of a training run, written to ``out`` (JSON)."""

    def __init__(self, out: str, segment: int = 100) -> None:
        self.out = out
        self.segment = int(segment)
        self.created = time.time()
        self.record: dict[str, Any] = {
            "probe_created_unix": self.created,
            "epochs": [],
            "validations": [],
            "segments": [],
        }
        self._epoch: dict[str, Any] = {}
        self._val_start: float | None = None
        self._seg_start: float | None = None
        self._seg_batches = 0
        self._cpu_at_start: dict[str, float] = {}

    # --------------------------------------------------------------- training batches
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._epoch = {"epoch": int(trainer.current_epoch), "start": time.time(), "batches": 0}
        self._seg_start, self._seg_batches = None, 0
        self._cpu_at_start = cpu_by_thread_and_child()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        now = time.time()
        if "first_batch_end_unix" not in self.record:
            self.record["first_batch_end_unix"] = now
        epoch = self._epoch
        epoch["batches"] += 1
        epoch.setdefault("first_batch_end", now)
        epoch["last_batch_end"] = now
        cpu = time.process_time()
        epoch.setdefault("first_batch_cpu", cpu)
        epoch["last_batch_cpu"] = cpu
        faults = minor_page_faults()
        epoch.setdefault("first_batch_faults", faults)
        epoch["last_batch_faults"] = faults
        if self._seg_start is None:
            self._seg_start = now
        else:
            self._seg_batches += 1
            if self._seg_batches == self.segment:
                self.record["segments"].append(
                    {
                        "epoch": epoch["epoch"],
                        "end_batch": epoch["batches"],
                        "batches_per_s": self.segment / (now - self._seg_start),
                    }
                )
                self._seg_start, self._seg_batches = now, 0

    # --------------------------------------------------------------- evaluation
    def on_validation_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._val_start = time.time()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self._val_start is None:
            return
        self.record["validations"].append(
            {
                "epoch": int(trainer.current_epoch),
                "sanity": bool(trainer.sanity_checking),
                "seconds": time.time() - self._val_start,
            }
        )

    # --------------------------------------------------------------- epoch state
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        epoch = self._epoch
        timed = epoch["batches"] - 1
        span = epoch.get("last_batch_end", 0) - epoch.get("first_batch_end", 0)
        epoch["train_batches_per_s"] = timed / span if span > 0 else float("nan")
        cpu_span = epoch.get("last_batch_cpu", 0) - epoch.get("first_batch_cpu", 0)
        # Per CPU-second of this process: what other jobs on the machine disturb least.
        epoch["train_batches_per_cpu_s"] = timed / cpu_span if cpu_span > 0 else float("nan")
        faults = epoch.get("last_batch_faults", 0) - epoch.get("first_batch_faults", 0)
        epoch["page_faults_per_batch"] = faults / max(timed, 1)
        epoch["rss_mb"] = rss_mb()
        # Who used the CPU during this epoch (training, validation, epoch-end work): on a
        # 2-core machine another busy thread or process stalls the intra-op threads.
        now_cpu = cpu_by_thread_and_child()
        epoch["cpu_s_by_thread_and_child"] = {
            key: round(value - self._cpu_at_start.get(key, 0.0), 2)
            for key, value in now_cpu.items()
            if value - self._cpu_at_start.get(key, 0.0) >= 0.01
        }
        epoch["num_threads"] = torch.get_num_threads()
        epoch["denormal_params"] = denormal_fraction(list(pl_module.parameters()))
        states = [
            value
            for optimizer in trainer.optimizers
            for state in optimizer.state.values()
            for value in state.values()
            if isinstance(value, torch.Tensor) and value.dim() > 0
        ]
        epoch["denormal_optimizer_state"] = denormal_fraction(states)
        curves = [cb for cb in trainer.callbacks if type(cb).__name__ == "TrainingCurves"]
        epoch["curves_points"] = sum(len(s) for s in curves[0].steps.values()) if curves else None
        self.record["epochs"].append(epoch)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.record["train_end_unix"] = time.time()
        self.write()

    def write(self) -> None:
        Path(self.out).write_text(json.dumps(self.record, indent=1))


def run_default(
    overrides: list[str] | None = None,
    threads: int | None = None,
    log_dir: str | None = None,
    timeout: float = 1800,
    terminal: bool = False,
) -> dict[str, Any]:
    """``python train.py [overrides]`` with the probe; returns its record plus the wall time
    from process start to exit, the evaluation time and its share.

    ``terminal``: run it under a pseudo-terminal (``script``), as ``make train`` typed at a
    shell runs, so the progress callback picks the rich bar instead of log lines.
    """
    with tempfile.TemporaryDirectory(dir=log_dir, prefix="bench_default_") as tmp:
        out = Path(tmp) / "probe.json"
        args = [
            sys.executable,
            "train.py",
            f"paths.log_dir={tmp}/logs",
            f"paths.data_dir={data_dir()}",
            "+callbacks.bench_probe._target_=benchmarks.default_run.RunProbe",
            f"+callbacks.bench_probe.out={out}",
            *(overrides or []),
        ]
        if threads:
            args.append(f"num_threads={threads}")
        env = child_env()
        if terminal:
            env["COLUMNS"], env["LINES"] = "160", "50"
            args = ["script", "-qec", shlex.join(args), "/dev/null"]
        start = time.time()
        done = subprocess.run(
            args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )
        wall = time.time() - start
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(
                f"train.py failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}"
            )
        record = json.loads(out.read_text())
    evaluation = sum(v["seconds"] for v in record["validations"] if not v["sanity"])
    record.update(
        {
            "overrides": overrides or [],
            "wall_s": wall,
            "start_unix": start,
            "time_to_first_batch_s": record["first_batch_end_unix"] - start,
            "evaluation_s": evaluation,
            "evaluation_share": evaluation / wall,
            "evaluation_added": evaluation / max(wall - evaluation, 1e-9),
        }
    )
    return record
