"""Training entry point: compose config -> instantiate -> fit -> return the monitored metric.

``python train.py`` (repo root) and the ``gan-train`` console script both land in :func:`main`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from gan_lightning.contracts import check_module
from gan_lightning.errors import ConfigError
from gan_lightning.modules.base import CHECKPOINT_KEY
from gan_lightning.runtime.checkpoints import read_checkpoint
from gan_lightning.runtime.cli import CONFIG_DIR, hydra_cli
from gan_lightning.runtime.compat import speed_up_lightning
from gan_lightning.runtime.config_checks import check_config
from gan_lightning.runtime.distributed import ddp_job
from gan_lightning.runtime.filesystem import (
    PICTURES,
    check_input_dir,
    check_writable_dir,
    first_fault,
    quiet_log_file_errors,
    training_stopped,
)
from gan_lightning.runtime.loggers import finish_loggers, log_run_config, quiet_library_noise
from gan_lightning.runtime.precision import check_fp16_mixed, choose_precision, on_cuda, tune_cuda
from gan_lightning.runtime.resume import resume_argv, resume_checkpoint, wandb_run_id
from gan_lightning.runtime.safe_config import check_trust

log = logging.getLogger(__name__)

__all__ = ["CONFIG_DIR", "build", "main", "run"]


def instantiate_callbacks(cfg: DictConfig | None) -> list[pl.Callback]:
    """Every ``callbacks.<name>`` node with a ``_target_``; ``callbacks.<name>=null`` disables it."""
    if not cfg:
        return []
    callbacks = [
        instantiate(node) for node in cfg.values() if node is not None and "_target_" in node
    ]
    return [cb for cb in callbacks if cb is not None]  # a factory may return None (e.g. progress)


def instantiate_loggers(cfg: DictConfig | None) -> list[Any]:
    if not cfg:
        return []
    return [instantiate(node) for node in cfg.values() if node is not None and "_target_" in node]


def describe(model: Any) -> str:
    """One line naming the module, its nets and their sizes (logged before training)."""
    parts = []
    for name, net in model.named_children():
        n_params = sum(p.numel() for p in net.parameters())
        shape = getattr(net, "image_shape", None)
        parts.append(
            f"{name}={type(net).__name__}({n_params:,} params"
            + (f", image_shape={list(shape)})" if shape is not None else ")")
        )
    return f"{type(model).__name__}: " + ", ".join(parts)


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, Any, pl.Trainer]:
    """Instantiate DataModule, model, callbacks, loggers and Trainer; all config errors surface
    here, before any data is touched or any step is taken."""
    check_config(cfg)  # (again: build() is also called on its own, by tests and notebooks)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    check_module(model)  # what callbacks, metrics and the CLIs call (docs/contract.md)
    rank_zero_info(f"Built {describe(model)}")
    # Missing data fails here, after the nets are known to fit the data's shape but before
    # metrics (which may need feature-extractor weights) and loggers are set up.
    if hasattr(datamodule, "check_source"):
        datamodule.check_source()
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    if cfg.get("metrics") and "_target_" in cfg.metrics:  # FID/KID/IS callback; metrics=none: off
        callbacks.append(instantiate(cfg.metrics))
    loggers = instantiate_loggers(cfg.get("logger"))

    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    max_steps = trainer_cfg.pop("max_steps", -1)
    max_steps = -1 if max_steps is None else int(max_steps)
    if max_steps == 0 or max_steps < -1:
        raise ConfigError(
            f"trainer.max_steps={max_steps} is not a budget; use -1 (no limit) or a positive "
            "number of real batches."
        )
    # A step here is one real batch; Lightning counts optimizer steps (two per batch for a GAN
    # updating D and G), so the budget is translated exactly by the model's update schedule.
    trainer_cfg["max_steps"] = model.optimizer_steps_for(max_steps) if max_steps > 0 else -1
    if "precision" in trainer_cfg:  # the project's `auto` (gan_lightning.runtime.precision)
        asked = trainer_cfg["precision"]
        accelerator = trainer_cfg.get("accelerator")
        trainer_cfg["precision"] = choose_precision(
            asked,
            accelerator,
            model,
            getattr(datamodule, "image_shape", None),
            OmegaConf.select(cfg, "data.batch_size"),
        )
        check_fp16_mixed(trainer_cfg["precision"], not model.automatic_optimization)
        if str(asked) == "auto" and on_cuda(accelerator):
            tuned = tune_cuda(trainer_cfg, cfg.get("matmul_precision"))
            if tuned:
                rank_zero_info("CUDA run, trainer.precision=auto: " + "; ".join(tuned))
    if trainer_cfg.get("strategy", "auto") == "auto" and several_processes(trainer_cfg):
        # However the user asked for several devices, DDP must suit the model: a GAN's two
        # backward passes leave one net without gradients each time (see GenerativeModule).
        trainer_cfg["strategy"] = model.ddp_strategy
    try:
        trainer = instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False)
    except InstantiationException as err:  # Lightning's own checks of its arguments
        cause = err.__cause__ or err
        if not isinstance(cause, (MisconfigurationException, ValueError, TypeError)):
            raise
        raise ConfigError(f"trainer: {str(cause).splitlines()[0]}") from err
    return datamodule, model, trainer


def several_processes(trainer_cfg: dict[str, Any]) -> bool:
    """Whether the Trainer will run more than one process (several devices or nodes)."""
    devices = trainer_cfg.get("devices", 1)
    nodes = trainer_cfg.get("num_nodes", 1) or 1
    if isinstance(devices, (list, tuple)):
        count = len(devices)
    elif devices in (-1, "-1", "auto"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 1
    else:
        count = int(devices)
    return count * int(nodes) > 1


def run(cfg: DictConfig) -> dict[str, float]:
    """Train one experiment; returns the final callback metrics, with the scores of the final
    weights (GenerativeMetrics.final_scores), for sweepers."""
    check_config(cfg)  # every value a user can set, before anything is built or seeded
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True)
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    if cfg.get("matmul_precision"):
        torch.set_float32_matmul_precision(cfg.matmul_precision)
    speed_up_lightning()  # per-batch costs of self.log and of the CUDA check on CPU machines
    quiet_library_noise()  # Lightning's advertisement and a deprecation inside Lightning
    check_run_paths(cfg)
    quiet_log_file_errors()  # a full disk under train.log: one warning, not a traceback a line
    PICTURES.reset()  # each run (each job of a multirun) warns once about its pictures
    ckpt_path = resume_checkpoint(cfg)
    if ckpt_path is not None:
        prepare_resume(cfg, ckpt_path)
    elif cfg.get("resume"):
        rank_zero_info("resume=auto: no checkpoint in this run directory yet; starting fresh.")
    datamodule, model, trainer = build(cfg)
    log_run_config(trainer, cfg)  # resolved config + run dir + git commit to every logger
    success = False
    try:
        with ddp_job(trainer):  # DDP ranks > 0 of a multirun job re-run only this job
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        success = True
    except Exception as err:
        fault = first_fault(err)
        if fault is None:
            raise
        # An essential write failed (a checkpoint, results.json, a logger's file): stop with
        # one line naming it and the last good checkpoint (the atomic writes kept it whole).
        callback = trainer.checkpoint_callback
        raise training_stopped(fault, getattr(callback, "dirpath", None)) from err
    finally:
        finish_loggers(trainer, success)  # wandb.finish(): one W&B run per (multirun) job
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    for callback in trainer.callbacks:  # the scores of the weights training ended with
        metrics.update(getattr(callback, "final_scores", {}))
    if hasattr(model, "batches_seen"):
        rank_zero_info(
            f"Trained on {model.batches_seen} real batches (Lightning's global_step, which "
            f"counts optimizer steps: {trainer.global_step})."
        )
    rank_zero_info(f"Finished. Run directory: {cfg.paths.output_dir}")
    return metrics


def check_run_paths(cfg: DictConfig) -> None:
    """The folders a run writes (its run directory, its checkpoints) and reads (the data
    directory) are what they should be, before anything is built: a fault found here costs
    one line and exit code 2 instead of a traceback minutes into the run."""
    fix = "point paths.log_dir (or hydra.run.dir) at a writable folder with free space"
    output_dir = cfg.paths.get("output_dir") if cfg.get("paths") else None
    if output_dir:
        check_writable_dir(str(output_dir), "the run directory", fix)
    checkpoints = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    if checkpoints:
        check_writable_dir(str(checkpoints), "the checkpoint directory", fix)
    data_dir = OmegaConf.select(cfg, "data.data_dir", default=None)
    if data_dir:
        check_input_dir(
            str(data_dir),
            "the data directory (paths.data_dir)",
            "point paths.data_dir at a folder (datasets are read from and downloaded into it)",
        )


def prepare_resume(cfg: DictConfig, ckpt_path: str) -> None:
    """Check the checkpoint before anything is built (safe to load, ours, the same model
    class), point the W&B logger at the run it continues, and say where training resumes."""
    checkpoint = read_checkpoint(ckpt_path, trust=check_trust(cfg.get("trust")))
    state = checkpoint[CHECKPOINT_KEY]
    saved = state["config"]["model"].get("_target_")
    if saved != cfg.model.get("_target_"):
        raise ConfigError(
            f"{ckpt_path} holds a {saved} but model._target_={cfg.model.get('_target_')}; "
            "resume with the model config it was trained with (same model=... and experiment=)."
        )
    run_id = wandb_run_id(checkpoint)
    if run_id and cfg.get("logger") and cfg.logger.get("wandb") is not None:
        with open_dict(cfg):
            cfg.logger.wandb.id = run_id  # continue the same W&B run, not a new one
    rank_zero_info(
        f"Resuming from {ckpt_path}: batch {state.get('batches_seen', '?')} (epoch "
        f"{checkpoint.get('epoch', '?')}), trained so far in {Path(ckpt_path).parent.parent}."
    )


def optimized_metric(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(
            f"optimized_metric={name!r} was not logged; available: {sorted(metrics)}."
        )
    return metrics[name]


@hydra_cli("config", prepare_argv=lambda argv: resume_argv(argv, CONFIG_DIR))
def main(cfg: DictConfig) -> float | None:
    """``python train.py`` / ``gan-train``: train, and return the monitored metric (sweepers)."""
    return optimized_metric(cfg, run(cfg))


if __name__ == "__main__":
    sys.exit(main())
