"""Convolutional nets in channels_last (NHWC) memory format, set up once before training.

oneDNN's CPU convolutions (and cuDNN's tensor-core ones) run fastest on NHWC tensors; PyTorch
keeps NCHW unless asked. Measured on the project's 2-core CPU (BENCHMARKS.md, fast paths):
the 28x28 DCGAN trains 1.18x (batch 64) to 1.36x (batch 128) faster in channels_last, the
same numbers otherwise. Nets without 4-D weights (the MLPs) are left alone, so the callback
can sit in the default list. Inputs follow by themselves: a convolution with NHWC weights
returns NHWC outputs, and single-channel images (MNIST) are both layouts at once; the
DataModules hand multi-channel images over in channels_last when they are asked to
(``BaseDataModule.channels_last``).

Parameters keep their values, names and shapes; checkpoints load into NCHW models (the
generate/evaluate CLIs) and back unchanged, because ``load_state_dict`` copies values.
Optimizer states are another matter: ``Optimizer.load_state_dict`` keeps the strides a state
tensor was saved with, and a *fused* optimizer (the project's Adam) silently computes a wrong
update when a state tensor's layout differs from its parameter's (measured: 0.16 absolute
error after one step). Resuming an NCHW checkpoint into channels_last nets, or the reverse,
would do exactly that, so after every restore (``on_train_start``) each state tensor is
re-laid out like its parameter, whatever ``memory_format`` says.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.precision import has_conv_weights

log = logging.getLogger(__name__)

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


class MemoryFormat(pl.Callback):
    """``memory_format: auto`` (channels_last for nets with convolutions), ``channels_last``
    or ``contiguous`` (PyTorch's NCHW default, i.e. do nothing)."""

    def __init__(self, memory_format: str = "auto") -> None:
        if memory_format not in MEMORY_FORMATS:
            raise ConfigError(
                f"callbacks.memory_format.memory_format={memory_format!r} is not known; choose "
                f"one of {list(MEMORY_FORMATS)}."
            )
        self.memory_format = memory_format

    def setup(self, trainer: pl.Trainer, pl_module: Any, stage: str) -> None:
        # Before configure_optimizers: optimizer states are created in the parameters' format.
        if self.memory_format == "contiguous" or not has_conv_weights(pl_module):
            return
        pl_module.to(memory_format=torch.channels_last)
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "channels_last"):
            datamodule.channels_last = True
        log.info("channels_last memory format for the convolutional nets")

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        match_state_layouts(trainer.optimizers)


def match_state_layouts(optimizers: list[torch.optim.Optimizer]) -> int:
    """Give every optimizer state tensor shaped like its parameter the parameter's strides
    (values unchanged); returns how many were re-laid out."""
    changed = 0
    for optimizer in optimizers:
        for param, state in optimizer.state.items():
            for key, value in state.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
                    changed += 1
    return changed
