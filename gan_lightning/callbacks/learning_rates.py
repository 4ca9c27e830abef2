"""Learning rates as metrics, named after the net each optimizer trains.

Lightning's ``LearningRateMonitor`` names optimizers by class (``lr-Adam``, ``lr-Adam-1``:
which one is D?) and refuses to run without a logger; this logs ``lr/generator``,
``lr/discriminator`` (``lr/model`` for one optimizer over everything, as in a VAE) through
``LightningModule.log``, so it reaches every logger and ``callback_metrics``, or nothing.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch


def optimizer_names(module: torch.nn.Module, optimizers: list[Any]) -> list[str]:
    """A name per optimizer: the top-level child whose parameters it owns, else ``opt<i>``."""
    owners: dict[int, str] = {}
    for child_name, child in module.named_children():
        for param in child.parameters():
            owners.setdefault(id(param), child_name)
    names = []
    for index, optimizer in enumerate(optimizers):
        found = {owners.get(id(p), "") for group in optimizer.param_groups for p in group["params"]}
        if len(found) == 1 and "" not in found:
            names.append(found.pop())
        elif len(optimizers) == 1:
            names.append("model")
        else:
            names.append(f"opt{index}")
    return names


class LearningRates(pl.Callback):
    """Log each optimizer's learning rate (first param group) at the start of every epoch."""

    def __init__(self) -> None:
        self.names: list[str] | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizers = list(trainer.optimizers)
        if not optimizers:
            return
        if self.names is None or len(self.names) != len(optimizers):
            self.names = optimizer_names(pl_module, optimizers)
        for name, optimizer in zip(self.names, optimizers, strict=True):
            lr = float(optimizer.param_groups[0]["lr"])
            pl_module.log(f"lr/{name}", lr, on_step=False, on_epoch=True, batch_size=1)
