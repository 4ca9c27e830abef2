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
  :mod:`gan_lightning.runtime.distributed` swaps that function for the duration of one ``fit``. The
  launcher keeps the processes it started in ``procs`` (a public attribute of a private
  class), the only way to wait for a job's ranks before the next job starts.

* Lightning's ``_ResultMetric.to`` (behind every ``LightningModule.log`` call) rebuilds the
  metric's whole state with ``apply_to_collection``, deep-copying its metadata dataclass, even
  when everything already sits on the target device: ~0.2 ms per logged value per batch on
  the project's CPU, 8 values per GAN batch (BENCHMARKS.md, "Where the framework loses
  time"). :func:`speed_up_lightning` gives it a fast path for that case.

* Lightning's loops know how far an epoch has got (``fit_loop.epoch_loop.batch_progress``,
  ``epoch_loop.done``) but expose it only through loop internals: the resumable loader saves
  that position, and the GAN module logs its epoch means on the epoch's last batch.
* W&B's ``Settings._offline`` is the only way to tell an offline run from an online one after
  ``wandb.init`` resolved ``mode`` and ``$WANDB_MODE``; Lightning's ``WandbLogger`` keeps the
  run id it will ask for in ``_id``.
* Hydra keeps one process-wide ``GlobalHydra`` and ``HydraConfig``: composing a config from
  Python (the compose API, resume=auto, the config checks) must clear them again, or the next
  app in the same process reads the previous run's state.
* ``torch._foreach_lerp_`` updates a whole list of tensors in one kernel (the EMA of every
  weight at once); its public equivalent is a Python loop of ``lerp_`` calls.

``tests/test_compat.py`` checks these attributes against the installed library versions, so
an upgrade that renames them fails there, loudly, rather than somewhere in a training run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the console scripts' --help must not load torch
    import torch


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


def _result_metric_to_fast_path(original: Any) -> Any:
    """``_ResultMetric.to(device)`` that returns at once when every tensor of the metric is
    already on ``device`` (what the slow path would produce: the same tensors, and an equal
    copy of the metadata). Anything else goes through Lightning's own ``to``."""
    import torch

    @functools.wraps(original)
    def to(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.is_tensor and len(args) == 1 and not kwargs and isinstance(args[0], torch.device):
            device = args[0]
            state = self.__dict__
            tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
            tensors += [
                v for v in state.get("_defaults", {}).values() if isinstance(v, torch.Tensor)
            ]
            if all(t.device == device for t in tensors):
                return self
        return original(self, *args, **kwargs)

    to.gan_lightning_fast_path = True
    return to


_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"
_dropped_nvml_check = False


def speed_up_lightning(enabled: bool = True) -> None:
    """Undo two per-batch costs Lightning adds on a CPU machine; idempotent, behaviour-preserving.

    * The fast path of ``_ResultMetric.to`` above (every ``self.log`` call).
    * ``import lightning`` sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` so that asking for CUDA
      never initialises it in a process that will fork. On a machine without a usable GPU
      that check dlopens NVML on *every* ``torch.cuda.is_available()``, and every
      ``Adam.step()`` asks (~0.1-0.2 ms per optimizer step). With no CUDA device there is
      nothing a fork could break, so the variable is dropped there, and only there.

    ``enabled=False`` restores Lightning's own behaviour (the benchmark's A/B).
    """
    global _dropped_nvml_check
    import torch
    from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultMetric

    patched = getattr(_ResultMetric.to, "gan_lightning_fast_path", False)
    if enabled and not patched:
        _ResultMetric.to = _result_metric_to_fast_path(_ResultMetric.to)
    elif not enabled and patched:
        _ResultMetric.to = _ResultMetric.to.__wrapped__
    if enabled and os.environ.get(_NVML_CHECK) == "1" and torch.cuda.device_count() == 0:
        del os.environ[_NVML_CHECK]
        _dropped_nvml_check = True
    elif not enabled and _dropped_nvml_check:
        os.environ[_NVML_CHECK] = "1"
        _dropped_nvml_check = False


# ---------------------------------------------------------------------------- Lightning loops
def batches_processed_this_epoch(trainer: Any) -> int:
    """Training batches the fit loop has finished in the current epoch."""
    return int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)


def epoch_done(trainer: Any) -> bool:
    """Whether the batch being finished is the epoch's last one (inside ``on_train_batch_end``)."""
    return bool(trainer.fit_loop.epoch_loop.done)


# ---------------------------------------------------------------------------- W&B
def wandb_run_is_offline(run: Any) -> bool:
    """Whether a started W&B run logs offline (its resolved mode)."""
    settings = getattr(run, "settings", None)
    return bool(settings is not None and getattr(settings, "_offline", False))


def wandb_set_run_id(logger: Any, run_id: str) -> None:
    """Make a Lightning ``WandbLogger`` ask for (and report) ``run_id`` on its next start."""
    logger._id = run_id
    logger._wandb_init["id"] = run_id


# ---------------------------------------------------------------------------- Hydra
def clear_hydra_state() -> None:
    """Forget Hydra's process-wide state (the composed config and the ``HydraConfig`` of the
    last run), so the next compose or app in this process starts clean."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().cfg = None
    GlobalHydra.instance().clear()


# ---------------------------------------------------------------------------- torch
def foreach_lerp_(targets: list[torch.Tensor], sources: list[torch.Tensor], weight: Any) -> None:
    """``target.lerp_(source, weight)`` for every pair, in one fused kernel."""
    import torch

    torch._foreach_lerp_(targets, sources, weight)
