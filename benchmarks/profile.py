"""Where a path's time goes: cProfile or torch.profiler over the timed steps of one case.

    python -m benchmarks.profile --case gan --path project [--tool torch] [--steps 200]

``--path`` is ``plain`` or a project variant (``project``, ``project_bare``); the profiler
runs only over the steps after warm-up, so start-up does not dilute the table. This is the
evidence behind the "where the framework loses time" findings in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from benchmarks.cases import CASES, compose_config, load_case_data
from benchmarks.plain import Options, PlainTrainer, in_memory_batches
from benchmarks.project import PROJECT_VARIANTS


class Profiled:
    """Start a profiler after ``warmup`` steps, stop it after ``steps`` more."""

    def __init__(self, tool: str, warmup: int, steps: int) -> None:
        self.tool = tool
        self.warmup = warmup
        self.steps = steps
        self.count = 0
        self.profiler: Any = None
        self.report = ""

    def _start(self) -> None:
        if self.tool == "cprofile":
            self.profiler = cProfile.Profile()
            self.profiler.enable()
        else:
            self.profiler = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=False
            )
            self.profiler.__enter__()

    def _stop(self) -> None:
        if self.tool == "cprofile":
            self.profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(self.profiler, stream=out)
            stats.sort_stats("tottime").print_stats(45)
            stats.sort_stats("cumulative").print_stats(60)
            self.report = out.getvalue()
        else:
            self.profiler.__exit__(None, None, None)
            self.report = self.profiler.key_averages().table(
                sort_by="self_cpu_time_total", row_limit=40
            )

    def tick(self) -> bool:
        """Call after every step; returns True when profiling is finished."""
        self.count += 1
        if self.count == self.warmup:
            self._start()
        elif self.count == self.warmup + self.steps:
            self._stop()
            return True
        return False


class ProfilerCallback(pl.Callback):
    def __init__(self, profiled: Profiled) -> None:
        self.profiled = profiled

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.profiled.tick():
            trainer.should_stop = True


def profile_case(case_name: str, path: str, tool: str, steps: int) -> str:
    case = CASES[case_name]
    profiled = Profiled(tool, case.warmup_steps, steps)
    if path == "plain":
        cfg = compose_config(case.overrides, tempfile.mkdtemp(prefix="bench_profile_"))
        data = load_case_data(cfg)
        trainer = PlainTrainer(data, Options())
        for batch in in_memory_batches(data):
            trainer.step(batch)
            if profiled.tick():
                break
        return profiled.report
    from gan_lightning.train import run

    overrides = [*case.overrides, *PROJECT_VARIANTS[path], "trainer.limit_val_batches=0"]
    with tempfile.TemporaryDirectory(prefix="bench_profile_") as out:
        cfg = compose_config(overrides, out)
        with open_dict(cfg):
            if cfg.get("callbacks") is None:
                cfg.callbacks = {}
        _PENDING[:] = [profiled]
        with open_dict(cfg):
            cfg.callbacks.bench_profiler = {"_target_": f"{__name__}.pending_callback"}
        run(cfg)
    return profiled.report


_PENDING: list[Profiled] = []


def pending_callback() -> ProfilerCallback:
    """Hydra target: the callback of the profile being set up (configs hold no objects)."""
    return ProfilerCallback(_PENDING[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="gan", choices=sorted(CASES))
    parser.add_argument("--path", default="project", choices=["plain", *PROJECT_VARIANTS])
    parser.add_argument("--tool", default="cprofile", choices=["cprofile", "torch"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(profile_case(args.case, args.path, args.tool, args.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
