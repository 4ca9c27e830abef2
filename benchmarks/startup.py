"""Time to first step: from ``python train.py`` to the first optimizer step, and where it goes.

:func:`measure_startup` starts a fresh interpreter running this module's :func:`child`,
which *is* ``python train.py [overrides]`` (it calls ``gan_lightning.train.main``) with
timestamps around each phase:

* ``interpreter``: process start (taken by the parent just before ``exec``) to the first line
  of Python;
* ``import torch``, ``import pytorch_lightning``, ``import gan_lightning.train`` (Hydra,
  OmegaConf and the project's own modules);
* ``hydra compose``: ``main()`` up to the first line of ``run`` (config composition, run
  directory, logging setup);
* ``data / model / callbacks / metrics / loggers / trainer build``: each ``instantiate`` of
  ``gan_lightning.train.build``, lazy imports included (``wandb`` is imported by the logger,
  matplotlib by the callbacks that draw);
* ``W&B start``: ``log_run_config`` (the first ``logger.experiment``, i.e. ``wandb.init``);
* ``fit: data``: ``prepare_data`` + ``setup`` of the DataModule (MNIST files -> tensors);
* ``fit: metrics setup``: the FID/KID callback's ``setup`` (loading the digit classifier);
* ``fit: other setup``: the rest until the sanity check (strategy, optimizers, model summary);
* ``sanity check``: ``num_sanity_val_steps`` validation batches;
* ``first step``: ``on_train_start`` to the first ``optimizer.step()`` returning.

The data and the digit classifier are expected cached (``make bench`` fetches them first).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Only the standard library at import time: the child's clock starts when this module runs,
# so everything heavy must be imported inside the phases it belongs to.

#: Phases in the order they happen: (name, start event, end event).
PHASES = (
    ("interpreter", "process_start", "python_start"),
    ("import torch", "python_start", "imported_torch"),
    ("import pytorch_lightning", "imported_torch", "imported_lightning"),
    ("import gan_lightning.train (+hydra)", "imported_lightning", "imported_project"),
    ("hydra compose + run dir", "imported_project", "run_start"),
    ("build: data", "build:data_start", "build:data_end"),
    ("build: model", "build:model_start", "build:model_end"),
    ("build: callbacks", "build:callbacks_start", "build:callbacks_end"),
    ("build: metrics callback", "build:metrics_start", "build:metrics_end"),
    ("build: loggers", "build:loggers_start", "build:loggers_end"),
    ("build: trainer", "build:trainer_start", "build:trainer_end"),
    ("W&B start (log_run_config)", "log_config_start", "log_config_end"),
    ("fit: data (prepare_data + setup)", "data_start", "data_end"),
    ("fit: metrics setup (classifier)", "metrics_setup_start", "metrics_setup_end"),
    ("fit: other setup", "fit_start", "sanity_start"),
    ("sanity check", "sanity_start", "sanity_end"),
    ("on_train_start -> first optimizer step", "train_start", "first_step"),
)


def _now() -> float:
    return time.time()


def child(out: str, overrides: list[str]) -> None:  # pragma: no cover - runs in a subprocess
    """``python train.py overrides`` with timestamps; exits right after the first step."""
    events: dict[str, float] = {"python_start": _now()}

    def mark(name: str) -> None:
        events.setdefault(name, _now())

    import torch  # noqa: F401 - timed on its own: the first heavy import

    mark("imported_torch")
    import pytorch_lightning as pl

    mark("imported_lightning")
    import gan_lightning.train as train_module

    mark("imported_project")

    # ---- build: each instantiate call, named by what it builds
    original_instantiate = train_module.instantiate
    kinds = iter(["data", "model"])

    def timed_instantiate(node: Any, *args: Any, **kwargs: Any) -> Any:
        target = str(node.get("_target_", "")) if hasattr(node, "get") else ""
        if target.endswith("Trainer"):
            kind = "trainer"
        elif target.endswith("GenerativeMetrics"):
            kind = "metrics"
        elif "Logger" in target:
            kind = "loggers"
        elif "callbacks" in target or "Checkpoint" in target or "progress" in target:
            kind = "callbacks"
        else:
            kind = next(kinds, "other")
        events.setdefault(f"build:{kind}_start", _now())
        try:
            built = original_instantiate(node, *args, **kwargs)
            return time_datamodule(built) if kind == "data" else built
        finally:
            events[f"build:{kind}_end"] = _now()

    train_module.instantiate = timed_instantiate

    original_build = train_module.build

    def timed_build(cfg: Any) -> Any:
        mark("run_start")
        return original_build(cfg)

    train_module.build = timed_build

    original_log_config = train_module.log_run_config

    def timed_log_config(*args: Any, **kwargs: Any) -> Any:
        mark("log_config_start")
        try:
            return original_log_config(*args, **kwargs)
        finally:
            mark("log_config_end")

    train_module.log_run_config = timed_log_config

    # ---- fit: DataModule and metrics setup, Lightning hooks, the first optimizer step
    from gan_lightning.metrics.callback import GenerativeMetrics

    def time_datamodule(datamodule: Any) -> Any:
        """Wrap this instance's prepare_data/setup (Lightning calls them through the instance)."""
        prepare, setup = datamodule.prepare_data, datamodule.setup

        def timed_prepare() -> Any:
            mark("data_start")
            return prepare()

        def timed_setup(stage: str | None = None) -> Any:
            mark("data_start")
            try:
                return setup(stage)
            finally:
                mark("data_end")

        datamodule.prepare_data, datamodule.setup = timed_prepare, timed_setup
        return datamodule

    metrics_setup = GenerativeMetrics.setup

    def timed_metrics_setup(self: Any, *args: Any, **kwargs: Any) -> Any:
        mark("metrics_setup_start")
        try:
            return metrics_setup(self, *args, **kwargs)
        finally:
            mark("metrics_setup_end")

    GenerativeMetrics.setup = timed_metrics_setup

    class Hooks(pl.Callback):
        def on_fit_start(self, *args: Any) -> None:
            mark("fit_start")

        def on_sanity_check_start(self, *args: Any) -> None:
            mark("sanity_start")

        def on_sanity_check_end(self, *args: Any) -> None:
            mark("sanity_end")

        def on_train_start(self, *args: Any) -> None:
            mark("train_start")
            events.setdefault("sanity_start", events["train_start"])
            events.setdefault("sanity_end", events["train_start"])

    original_trainer_init = pl.Trainer.__init__

    def trainer_init(self: Any, *args: Any, callbacks: Any = None, **kwargs: Any) -> None:
        callbacks = [*(callbacks or []), Hooks()]
        original_trainer_init(self, *args, callbacks=callbacks, **kwargs)

    pl.Trainer.__init__ = trainer_init

    def first_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        mark("first_step")
        Path(out).write_text(json.dumps(events))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # the measurement ends here; nothing after the first step is timed

    from torch.optim.optimizer import register_optimizer_step_post_hook

    register_optimizer_step_post_hook(first_step)
    sys.argv = ["train.py", *overrides]
    train_module.main(overrides)
    raise SystemExit("train.py returned before any optimizer step")


def measure_startup(
    overrides: list[str] | None = None, threads: int | None = None, timeout: float = 300
) -> dict[str, Any]:
    """One fresh ``python train.py`` (default config unless ``overrides``) to its first
    optimizer step: total seconds and seconds per phase."""
    from benchmarks.cases import REPO, child_env, data_dir

    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        out = Path(tmp) / "events.json"
        args = [f"paths.log_dir={tmp}/logs", f"paths.data_dir={data_dir()}", *(overrides or [])]
        if threads:
            args.append(f"num_threads={threads}")
        env = child_env()
        command = [sys.executable, "-m", "benchmarks.startup", "--child", str(out), *args]
        start = _now()
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )
        if not out.is_file():
            raise RuntimeError(f"startup child failed ({done.returncode}):\n{done.stderr[-3000:]}")
        events = json.loads(out.read_text())
    events["process_start"] = start
    phases = {name: events[b] - events[a] for name, a, b in PHASES if a in events and b in events}
    return {"total_s": events["first_step"] - start, "phases_s": phases}


#: The plain loop's way to its first step: torch, the default MLP GAN's two nets, fused Adam,
#: one D update on random images (Adam's first step imports torch._dynamo, as the project's
#: does). What any training script pays on this machine before it trains.
PLAIN_FIRST_STEP = """
import json, sys, time
t_python = time.time()
import torch
from torch import nn
t_torch = time.time()
def mlp(sizes):
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers[:-1])
g, d = mlp([100, 256, 512, 1024, 784]), mlp([784, 512, 256, 1])
opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
real = torch.rand(64, 784) * 2 - 1
fake = g(torch.randn(64, 100)).tanh()
loss = nn.functional.softplus(-d(real)).mean() + nn.functional.softplus(d(fake.detach())).mean()
loss.backward()
opt_d.step()
print(json.dumps({"python_start": t_python, "imported_torch": t_torch, "first_step": time.time()}))
"""


def measure_plain_startup(threads: int | None = None, timeout: float = 120) -> dict[str, Any]:
    """A fresh interpreter running :data:`PLAIN_FIRST_STEP`: seconds to its first optimizer
    step, and to ``import torch`` done (the reference for the project's startup)."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    start = _now()
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_FIRST_STEP],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    events = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "total_s": events["first_step"] - start,
        "import_torch_s": events["imported_torch"] - events["python_start"],
    }


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
    else:
        print(json.dumps(measure_startup(sys.argv[1:]), indent=1))
