"""``trainer.precision=auto`` (the default): bf16 mixed precision where it pays and holds.

CPUs with AVX512-BF16 (AMD Zen 4, Intel Cooper Lake and later) or AMX (Intel Sapphire Rapids
and later) run oneDNN's bf16 matmuls and convolutions at 1.8-5x their fp32 rate; elsewhere
PyTorch emulates bf16 and it is *slower* than fp32. Measured here (BENCHMARKS.md, the precision
table: same batches, 2 seeds, digits FID of 10k samples): the DCGAN trained 1.4x faster in
bf16-mixed at the same FID (118 vs 117), the MLP VAE the same; the MLP GAN lost FID (252 vs 234)
and gained little or no speed (its small matmuls gain less than the casts cost). So ``auto`` picks
``bf16-mixed`` for models with convolutions on a CPU with native bf16, and ``32-true`` for
everything else. On GPUs ``auto`` keeps ``32-true``: there the choice (bf16, fp16 with a
scaler, tf32) is the user's, per card. The decision is logged once, with its reason.

Under ``bf16-mixed`` Lightning autocasts the forward passes only; the weights, their optimizer
states and the EMA copy stay fp32, and the GAN module hands D's logits to the losses in fp32.
"""

from __future__ import annotations

import logging
import platform
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: CPU flags (as /proc/cpuinfo spells them) that mean native bf16 arithmetic.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags on Linux (empty elsewhere: ``auto`` then stays fp32)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16_flags() -> list[str]:
    flags = cpu_flags()
    return [f for f in NATIVE_BF16_FLAGS if f in flags]


def on_cpu(accelerator: str | None) -> bool:
    if accelerator in ("cpu",):
        return True
    if accelerator in (None, "auto"):
        import torch

        return not torch.cuda.is_available() and not torch.backends.mps.is_available()
    return False


def resolve_precision(
    precision: str | int | None, accelerator: str | None, convolutional: bool = True
) -> str | int | None:
    """``auto`` -> ``bf16-mixed`` for a convolutional model on a CPU with native bf16, else
    ``32-true``; anything else is returned as given (Lightning checks it)."""
    if str(precision) != "auto":
        return precision
    if convolutional and on_cpu(accelerator) and native_bf16_flags():
        return "bf16-mixed"
    return "32-true"


def has_conv_weights(module: Any) -> bool:
    return any(p.dim() == 4 for p in module.parameters())


def choose_precision(
    precision: str | int | None, accelerator: str | None, model: Any
) -> str | int | None:
    """:func:`resolve_precision` for ``model``, saying in the log (rank zero) what ``auto``
    chose and why."""
    convolutional = has_conv_weights(model)
    if str(precision) == "auto":
        from pytorch_lightning.utilities import rank_zero_only

        if rank_zero_only.rank == 0:
            log.info(describe_choice(accelerator, convolutional))
    return resolve_precision(precision, accelerator, convolutional)


def describe_choice(accelerator: str | None, convolutional: bool = True) -> str:
    """The log line for ``trainer.precision=auto``."""
    chosen = resolve_precision("auto", accelerator, convolutional)
    if not on_cpu(accelerator):
        return f"trainer.precision=auto -> {chosen} (not a CPU run: set it for your GPU)"
    flags = native_bf16_flags()
    if flags and not convolutional:
        return (
            f"trainer.precision=auto -> {chosen}: MLP nets lose FID and gain no speed in bf16 "
            "(BENCHMARKS.md); trainer.precision=bf16-mixed forces it"
        )
    if flags:
        return f"trainer.precision=auto -> {chosen}: this CPU has native bf16 ({', '.join(flags)})"
    return (
        f"trainer.precision=auto -> {chosen}: this CPU ({platform.processor() or 'unknown'}) "
        "has no native bf16 (avx512_bf16 or amx_bf16), where bf16 would be slower"
    )
