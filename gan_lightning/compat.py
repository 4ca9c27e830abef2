"""The one adapter for other libraries' private attributes that have no public equivalent.

Everything else in the project uses public APIs. What is left, and why:

* torchmetrics' ``NoTrainInceptionV3`` (the network inside its FID, KID and IS) returns only
  the first requested feature from ``forward``; its ``_torch_fidelity_forward`` returns all of
  them (pool features *and* logits) from one pass. torch-fidelity's own public ``forward``
  does too, but resizes differently (TF1-style, no antialiasing), so its features would not
  match torchmetrics' FID with its default ``antialias=True``.
* Lightning's ``WandbLogger`` keeps the keyword arguments of ``wandb.init`` in
  ``_wandb_init`` and the started run in ``_experiment``. Its public ``experiment`` property
  *starts* a run, so there is no public way to ask "has a run started?" (needed to finish only
  runs that exist, one per multirun job), nor to change the init arguments after construction
  (needed to fall back to offline when an online start fails, instead of killing training).

* Lightning's DDP subprocess launcher builds the command of ranks > 0 in the module-level
  function ``_hydra_subprocess_cmd(local_rank) -> (command, cwd)`` whenever Hydra is
  running, from ``sys.argv``; there is no argument or hook to give it another command. Inside
  a multirun job ``sys.argv`` is the whole sweep's (or loky's) command line, so
  :mod:`gan_lightning.distributed` swaps that function for the duration of one ``fit``. The
  launcher keeps the processes it started in ``procs`` (a public attribute of a private
  class), the only way to wait for a job's ranks before the next job starts.

``tests/test_compat.py`` checks these attributes against the installed library versions, so
an upgrade that renames them fails there, loudly, rather than somewhere in a training run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def wandb_init_kwargs(logger: Any) -> dict[str, Any]:
    """The (mutable) keyword arguments Lightning's ``WandbLogger`` will pass to ``wandb.init``."""
    return logger._wandb_init


def wandb_started_run(logger: Any) -> Any:
    """The W&B run of a Lightning ``WandbLogger`` if it has started one, else ``None``
    (unlike ``logger.experiment``, this never starts a run)."""
    return logger._experiment


def wandb_forget_run(logger: Any) -> None:
    """Drop a run that failed to start, so the next ``logger.experiment`` starts a new one."""
    logger._experiment = None


def inception_features(net: Any, images: Any) -> tuple[Any, ...]:
    """All ``features_list`` outputs of torchmetrics' ``NoTrainInceptionV3`` from one forward
    pass, in ``features_list`` order (uint8 (N, 3, H, W) images in)."""
    return net._torch_fidelity_forward(images)


@contextmanager
def ddp_child_command(build: Callable[[int], tuple[list[str], str]]) -> Iterator[None]:
    """While active, Lightning's DDP launcher starts local rank ``r`` (> 0) with
    ``command, cwd = build(r)`` instead of re-running ``sys.argv`` (Hydra runs only)."""
    from pytorch_lightning.strategies.launchers import subprocess_script

    original = subprocess_script._hydra_subprocess_cmd
    subprocess_script._hydra_subprocess_cmd = build
    try:
        yield
    finally:
        subprocess_script._hydra_subprocess_cmd = original


def ddp_child_processes(trainer: Any) -> list[Any]:
    """The rank processes (``subprocess.Popen``) this process's Trainer started for DDP;
    ``[]`` for other strategies and on ranks > 0."""
    launcher = getattr(trainer.strategy, "launcher", None)
    return list(getattr(launcher, "procs", None) or [])
