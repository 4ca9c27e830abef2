"""Where a path's time goes: py-spy, cProfile or torch.profiler over the steady-state steps.

    python -m benchmarks.profile --case gan --path project [--tool pyspy|cprofile|torch]
        [--steps 400] [--threads 1]

``--path`` is ``plain`` or a project variant (``project``, ``project_bare``,
``project_stock``). ``pyspy`` (``pip install py-spy``; the default when it is installed)
samples the main thread from outside at 250 Hz, so it does not slow Python down the way
cProfile does, and sorts every sample taken inside the training loop into cost categories
(:data:`CATEGORIES`): model compute, optimizer, ``self.log``, the module's NaN check, the
data path, callbacks, Lightning's loop. This is the evidence behind "where the framework
loses time" in BENCHMARKS.md. ``cprofile`` and ``torch`` profile only the steps after warm-up.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from benchmarks.cases import CASES, REPO, compose_config, load_case_data
from benchmarks.plain import Options, PlainTrainer, in_memory_batches
from benchmarks.project import PROJECT_VARIANTS

#: (category, substrings of a frame) checked from the innermost frame outwards: a sample
#: counts for the first category one of its frames matches.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "self.log (Lightning result collection)",
        ("logger_connector/result.py", "(log (", "(log_dict (", "log_train ("),
    ),
    ("optimizer step (Adam)", ("torch/optim/",)),
    ("backward", ("torch/autograd/", "_tensor.py")),
    ("NaN check + grad norm (module)", ("clip_grad.py", "(_update (")),
    (
        "forward: nets + losses",
        (
            "torch/nn/",
            "gan_lightning/nets/",
            "gan_lightning/losses.py",
            "(d_terms (",
            "(g_terms (",
            "(_gan_step (",
            "(_vae_step (",
            "(loss_terms (",
            "(forward (",
        ),
    ),
    ("toggle/untoggle_optimizer", ("toggle_optimizer",)),
    (
        "data: sampler, fetch, transfer, scaling",
        (
            "torch/utils/data/",
            "fetchers.py",
            "gan_lightning/data/",
            "utils/pixels.py",
            "apply_func.py",
            "batch_to",
            "in_memory_batches",
        ),
    ),
    (
        "callbacks",
        (
            "gan_lightning/callbacks/",
            "pytorch_lightning/callbacks/",
            "gan_lightning/metrics/",
            "benchmarks/project.py",
            "benchmarks/profile.py",
        ),
    ),
    ("logger connector / loggers", ("logger_connector/", "pytorch_lightning/loggers/", "wandb/")),
    ("training_step (module, other)", ("gan_lightning/modules/",)),
    ("Lightning loop + hooks (other)", ("pytorch_lightning/",)),
)


def categorize(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarize_pyspy(raw: str, loop_marker: str) -> str:
    """Category table of the samples whose stack contains ``loop_marker``."""
    counts: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    by_category: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for line in raw.splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not count.isdigit() or loop_marker not in stack_text:
            continue
        stack = stack_text.split(";")
        n = int(count)
        total += n
        category = categorize(stack)
        counts[category] += n
        leaves[stack[-1]] += n
        # The frame that decided the category, and the one below it: what to look at.
        by_category[category][" <- ".join(reversed(stack[-2:]))] += n
    if not total:
        return "no samples inside the training loop"
    lines = [f"{total} samples inside the training loop", "", "| category | share |", "|---|---:|"]
    lines += [f"| {name} | {100 * n / total:.1f}% |" for name, n in counts.most_common()]
    lines += ["", "innermost Python frames:"]
    lines += [f"  {100 * n / total:5.1f}%  {leaf}" for leaf, n in leaves.most_common(25)]
    for name, _ in counts.most_common():
        lines += ["", f"{name}: innermost frames"]
        lines += [
            f"  {100 * n / total:5.1f}%  {frames}" for frames, n in by_category[name].most_common(8)
        ]
    return "\n".join(lines)


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
        elif self.tool == "torch":
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
        elif self.tool == "torch":
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


_PENDING: list[Profiled] = []


def pending_callback() -> ProfilerCallback:
    """Hydra target: the callback of the profile being set up (configs hold no objects)."""
    return ProfilerCallback(_PENDING[0])


def profile_case(
    case_name: str, path: str, tool: str, steps: int, extra: tuple[str, ...] = ()
) -> str:
    """Run ``steps`` steady-state steps of ``path`` on ``case_name`` under ``tool``
    (``extra``: more ``train.py`` overrides, e.g. a prototype's ``model._target_``)."""
    case = CASES[case_name]
    profiled = Profiled(tool, case.warmup_steps, steps)
    if path.startswith("plain"):
        os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)  # plain PyTorch, no Lightning
        cfg = compose_config(case.overrides, tempfile.mkdtemp(prefix="bench_profile_"))
        data = load_case_data(cfg)
        trainer = PlainTrainer(data, Options(autocast="bf16" if path == "plain_bf16" else None))
        for batch in in_memory_batches(data):
            trainer.step(batch)
            if profiled.tick():
                break
        return profiled.report
    from gan_lightning import train
    from gan_lightning.runtime import compat

    overrides = [*case.overrides, *PROJECT_VARIANTS.get(path, PROJECT_VARIANTS["project"])]
    overrides += ["trainer.limit_val_batches=0", *extra]
    with tempfile.TemporaryDirectory(prefix="bench_profile_") as out:
        cfg = compose_config(overrides, out)
        with open_dict(cfg):
            if cfg.get("callbacks") is None:
                cfg.callbacks = {}
            cfg.callbacks.bench_profiler = {"_target_": f"{__name__}.pending_callback"}
        _PENDING[:] = [profiled]
        if path == "project_stock":
            train.speed_up_lightning = lambda: compat.speed_up_lightning(enabled=False)
        train.run(cfg)
    return profiled.report


def run_pyspy(args: argparse.Namespace) -> str:
    """Re-run this module under ``py-spy record`` and summarise its samples."""
    spy = shutil.which("py-spy") or os.environ.get("PY_SPY")
    if not spy:
        raise SystemExit("py-spy not found: pip install py-spy (or set PY_SPY=/path/to/py-spy)")
    with tempfile.TemporaryDirectory(prefix="bench_pyspy_") as tmp:
        raw = Path(tmp) / "raw.txt"
        child = [sys.executable, "-m", "benchmarks.profile", "--tool", "none"]
        child += ["--case", args.case, "--path", args.path, "--steps", str(args.steps)]
        if args.threads:
            child += ["--threads", str(args.threads)]
        child += [f"--override={o}" for o in args.override]
        command = [spy, "record", "-r", "250", "-f", "raw", "-o", str(raw), "--", *child]
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        text = raw.read_text()
    marker = "plain.py" if args.path.startswith("plain") else "training_epoch_loop.py"
    return summarize_pyspy(text, marker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="gan", choices=sorted(CASES))
    parser.add_argument(
        "--path",
        default="project",
        choices=["plain", "plain_bf16", *PROJECT_VARIANTS, "project_stock"],
    )
    parser.add_argument(
        "--tool",
        default="pyspy" if shutil.which("py-spy") or os.environ.get("PY_SPY") else "cprofile",
        choices=["pyspy", "cprofile", "torch", "none"],
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--override", action="append", default=[], help="train.py override")
    args = parser.parse_args(argv)
    if args.tool == "pyspy":
        print(run_pyspy(args))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    print(profile_case(args.case, args.path, args.tool, args.steps, tuple(args.override)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
