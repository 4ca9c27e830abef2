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
* Hydra's apps read their command line (``--config-dir``, ``--config-name``, ``-m``, the
  overrides) with ``hydra._internal.utils.get_args_parser``; the config checks and
  ``resume=auto`` compose before the app runs, so they read it with the same parser
  (:mod:`gan_lightning.runtime.config_search`) instead of guessing which argument is which.
* ``torch._foreach_lerp_`` updates a whole list of tensors in one kernel (the EMA of every
  weight at once); its public equivalent is a Python loop of ``lerp_`` calls.
* ``torch._amp_foreach_non_finite_check_and_unscale_``, GradScaler's finiteness check of a
  list of tensors in one pass (``any_nonfinite``: the GAN's NaN guard on a CPU).
* torch's fused optimizers skip a step on the device when their ``found_inf`` attribute is 1
  (``_step_supports_amp_scaling`` says they read it): the protocol ``GradScaler`` uses, and the
  only way to mask an update without reading a verdict back to the host. The GAN's NaN guard
  uses it on accelerators (:mod:`gan_lightning.modules.nan_guard`).

``tests/test_compat.py`` checks these attributes against the installed library versions, so
an upgrade that renames them fails there, loudly, rather than somewhere in a training run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where used: the help screens start without it
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


def _callback_hooks_fast_path(original: Any) -> Any:
    """Lightning's ``call._call_callback_hooks`` without the calls that cannot do anything.

    Lightning calls every hook of every callback at every point (about ten hooks per GAN
    batch, for each of the ~10 default callbacks), each inside a profiler context named by
    ``callback.state_key``, which ModelCheckpoint formats from five settings on every call.
    With the default no-op profiler this version skips the context and the callbacks that do
    not override the hook (``pl.Callback``'s own methods do nothing), so a callback that acts
    every N batches costs one gated call per batch and one that never acts per batch costs
    nothing. Anything else (a real profiler) goes through Lightning's own function."""
    import pytorch_lightning as pl
    from pytorch_lightning.profilers import PassThroughProfiler

    overridden: dict[tuple[type, str], bool] = {}

    def acts(callback: Any, hook_name: str) -> bool:
        key = (type(callback), hook_name)
        if key not in overridden:
            own = getattr(type(callback), hook_name, None)
            overridden[key] = own is not getattr(pl.Callback, hook_name, None)
        return overridden[key] or hook_name in callback.__dict__

    @functools.wraps(original)
    def call_hooks(
        trainer: Any,
        hook_name: str,
        *args: Any,
        monitoring_callbacks: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if monitoring_callbacks is not None or type(trainer.profiler) is not PassThroughProfiler:
            return original(
                trainer, hook_name, *args, monitoring_callbacks=monitoring_callbacks, **kwargs
            )
        pl_module = trainer.lightning_module
        if pl_module:
            prev_fx_name = pl_module._current_fx_name
            pl_module._current_fx_name = hook_name
        for callback in trainer.callbacks:
            if acts(callback, hook_name):
                fn = getattr(callback, hook_name)
                if callable(fn):
                    fn(trainer, trainer.lightning_module, *args, **kwargs)
        if pl_module:
            pl_module._current_fx_name = prev_fx_name
        return None

    call_hooks.gan_lightning_fast_path = True
    return call_hooks


_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"
_dropped_nvml_check = False


def speed_up_lightning(enabled: bool = True) -> None:
    """Undo two per-batch costs Lightning adds on a CPU machine; idempotent, behaviour-preserving.

    * The fast path of ``_ResultMetric.to`` above (every ``self.log`` call).
    * The fast path of ``call._call_callback_hooks`` above (every callback hook).
    * ``import lightning`` sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` so that asking for CUDA
      never initialises it in a process that will fork. On a machine without a usable GPU
      that check dlopens NVML on *every* ``torch.cuda.is_available()``, and every
      ``Adam.step()`` asks (~0.1-0.2 ms per optimizer step). With no CUDA device there is
      nothing a fork could break, so the variable is dropped there, and only there.

    ``enabled=False`` restores Lightning's own behaviour (the benchmark's A/B).
    """
    global _dropped_nvml_check
    import torch
    from pytorch_lightning.trainer import call
    from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultMetric

    patched = getattr(_ResultMetric.to, "gan_lightning_fast_path", False)
    if enabled and not patched:
        _ResultMetric.to = _result_metric_to_fast_path(_ResultMetric.to)
    elif not enabled and patched:
        _ResultMetric.to = _ResultMetric.to.__wrapped__
    hooks_patched = getattr(call._call_callback_hooks, "gan_lightning_fast_path", False)
    if enabled and not hooks_patched:
        call._call_callback_hooks = _callback_hooks_fast_path(call._call_callback_hooks)
    elif not enabled and hooks_patched:
        call._call_callback_hooks = call._call_callback_hooks.__wrapped__
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


def hydra_arguments(argv: list[str]) -> Any:
    """``argv`` parsed by the argument parser of Hydra's apps (``hydra._internal.utils.
    get_args_parser``: ``overrides``, ``config_dir``, ``config_name``, ``multirun`` ...), or
    ``None`` where that parser refuses it (the app then reports it itself). Nothing is printed
    and nothing exits (``--version`` and parse errors are swallowed here)."""
    import contextlib
    import io

    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return parser.parse_args(argv)
    except SystemExit:
        return None


# ---------------------------------------------------------------------------- torch
def foreach_lerp_(targets: list[torch.Tensor], sources: list[torch.Tensor], weight: Any) -> None:
    """``target.lerp_(source, weight)`` for every pair, in one fused kernel."""
    import torch

    torch._foreach_lerp_(targets, sources, weight)


def any_nonfinite(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A 0-d float32 tensor on the first tensor's device: 1.0 where any value of ``tensors``
    is NaN or infinite, else 0.0. GradScaler's own check
    (``torch._amp_foreach_non_finite_check_and_unscale_``) with a scale of 1, which leaves
    the values as they are: one read of each tensor, 2-2.5x cheaper on a CPU than the
    gradient norm (``get_total_norm``) it replaces as the NaN guard's test."""
    import torch

    found = torch.zeros((), dtype=torch.float32, device=tensors[0].device)
    groups: dict[tuple[Any, Any], list[torch.Tensor]] = {}
    for tensor in tensors:  # the op takes one device and one dtype at a time
        groups.setdefault((tensor.device, tensor.dtype), []).append(tensor)
    for (device, _), group in groups.items():
        flag = found if device == found.device else torch.zeros_like(found, device=device)
        one = torch.ones((), dtype=torch.float32, device=device)
        torch._amp_foreach_non_finite_check_and_unscale_(group, flag, one)
        if flag is not found:
            found = torch.maximum(found, flag.to(found.device))
    return found


def supports_found_inf(optimizer: Any) -> bool:
    """Whether ``optimizer.step()`` honours a ``found_inf`` attribute (torch's fused
    optimizers; GradScaler's test for the same)."""
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False))


@contextmanager
def step_masked_by_found_inf(optimizer: Any, found_inf: torch.Tensor) -> Iterator[None]:
    """Steps of ``optimizer`` inside this block change nothing (weights, moments, step count)
    where the 0-d float tensor ``found_inf`` is 1, decided on its device (as GradScaler does)."""
    optimizer.found_inf = found_inf
    try:
        yield
    finally:
        optimizer.__dict__.pop("found_inf", None)
