"""Training entry point: compose config -> instantiate -> fit -> return the monitored metric.

``python train.py`` (repo root) and the ``gan-train`` console script both land in :func:`main`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gan_lightning.errors import ConfigError, DataSourceError

log = logging.getLogger(__name__)

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def _user_error(err: BaseException) -> BaseException | None:
    """The ConfigError/DataSourceError behind ``err`` (Hydra wraps errors from __init__)."""
    while err is not None:
        if isinstance(err, (ConfigError, DataSourceError)):
            return err
        err = err.__cause__ or (err.__context__ if isinstance(err, InstantiationException) else None)
    return None


def instantiate_callbacks(cfg: DictConfig | None) -> list[pl.Callback]:
    """Every ``callbacks.<name>`` node with a ``_target_``; ``callbacks.<name>=null`` disables it."""
    if not cfg:
        return []
    return [instantiate(node) for node in cfg.values() if node is not None and "_target_" in node]


def instantiate_loggers(cfg: DictConfig | None) -> list[Any]:
    if not cfg:
        return []
    return [instantiate(node) for node in cfg.values() if node is not None and "_target_" in node]


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, Any, pl.Trainer]:
    """Instantiate DataModule, model, callbacks, loggers and Trainer; all config errors surface
    here, before any data is touched or any step is taken."""
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
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
    if cfg.get("matmul_precision"):
        torch.set_float32_matmul_precision(cfg.matmul_precision)
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if hasattr(model, "batches_seen"):
        log.info(
            "Trained on %d real batches (Lightning's global_step, which counts optimizer steps: %d).",
            model.batches_seen, trainer.global_step,
        )
    log.info("Finished. Run directory: %s", cfg.paths.output_dir)
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


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = run(cfg)
    except Exception as err:  # noqa: BLE001 - only user errors are reformatted
        user = _user_error(err)
        if user is None:
            raise
        log.error("%s: %s", type(user).__name__, user)
        print(f"\nError: {user}", file=sys.stderr)
        sys.exit(2)
    return optimized_metric(cfg, metrics)


if __name__ == "__main__":
    main()
