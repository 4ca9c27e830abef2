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
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_info

from gan_lightning.cli import CONFIG_DIR, hydra_cli
from gan_lightning.compat import speed_up_lightning
from gan_lightning.errors import ConfigError
from gan_lightning.loggers import finish_loggers, log_run_config

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
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
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
    trainer = instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def run(cfg: DictConfig) -> dict[str, float]:
    """Train one experiment; returns the final callback metrics (for sweepers)."""
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True)
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    if cfg.get("matmul_precision"):
        torch.set_float32_matmul_precision(cfg.matmul_precision)
    speed_up_lightning()  # per-batch costs of self.log and of the CUDA check on CPU machines
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path and not Path(ckpt_path).is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path} does not exist; pass a .ckpt of a previous run, e.g. "
            "ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt"
        )
    datamodule, model, trainer = build(cfg)
    log_run_config(trainer, cfg)  # resolved config + run dir + git commit to every logger
    success = False
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        success = True
    finally:
        finish_loggers(trainer, success)  # wandb.finish(): one W&B run per (multirun) job
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if hasattr(model, "batches_seen"):
        rank_zero_info(
            f"Trained on {model.batches_seen} real batches (Lightning's global_step, which "
            f"counts optimizer steps: {trainer.global_step})."
        )
    rank_zero_info(f"Finished. Run directory: {cfg.paths.output_dir}")
    return metrics


def optimized_metric(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(
            f"optimized_metric={name!r} was not logged; available: {sorted(metrics)}."
        )
    return metrics[name]


@hydra_cli("config")
def main(cfg: DictConfig) -> float | None:
    """``python train.py`` / ``gan-train``: train, and return the monitored metric (sweepers)."""
    return optimized_metric(cfg, run(cfg))


if __name__ == "__main__":
    sys.exit(main())
