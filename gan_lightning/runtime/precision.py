"""``trainer.precision=auto`` (the default): bf16 mixed precision where it pays and holds.

CPUs with AVX512-BF16 (AMD Zen 4, Intel Cooper Lake and later) or AMX (Intel Sapphire Rapids
and later) run oneDNN's bf16 matmuls and convolutions at 1.8-5x their fp32 rate; elsewhere
PyTorch emulates bf16 and it is *slower* than fp32. Measured here (BENCHMARKS.md, the precision
table: same batches, 2 seeds, digits FID of 10k samples): the DCGAN trained 1.4x faster in
bf16-mixed at the same FID (118 vs 117), the MLP VAE the same; the MLP GAN lost FID (252 vs 234)
and gained little or no speed (its small matmuls gain less than the casts cost). So ``auto`` picks
``bf16-mixed`` for models with convolutions on a CPU with native bf16, and ``32-true`` for
everything else on a CPU.

On a CUDA GPU with native bf16 (compute capability 8.0 and later: A100, H100, RTX 30xx/40xx)
``auto`` picks ``bf16-mixed`` for convolutional models (the same rule as on a CPU: the MLP
GAN's FID loss is a property of bf16 arithmetic, not of the CPU), and for every model on CUDA
it turns on TF32 matmuls (``torch.set_float32_matmul_precision("high")``, unless
``matmul_precision`` is set) and ``cudnn.benchmark`` (the image shapes are fixed, so cuDNN's
per-shape search pays once; not with ``trainer.deterministic=true``). The GPU quality check
(same batches, fp32 vs bf16-mixed, FID within seed noise) is part of ``scripts/gpu_check.sh``
and has not been run on a GPU yet. The decision is logged once, with its reason.

``16-mixed`` (fp16 with a GradScaler) is refused for GANs: see :func:`check_fp16_mixed`.

Under ``bf16-mixed`` Lightning autocasts the forward passes only; the weights, their optimizer
states and the EMA copy stay fp32, and the GAN module hands D's logits to the losses in fp32.
"""

from __future__ import annotations

import logging
import platform
from functools import cache
from pathlib import Path
from typing import Any

from gan_lightning.errors import ConfigError

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


def on_cuda(accelerator: str | None) -> bool:
    """Whether the Trainer will run on a CUDA GPU (``gpu``/``cuda``, or ``auto`` with one)."""
    if accelerator in ("gpu", "cuda"):
        return True
    if accelerator in (None, "auto"):
        import torch

        return torch.cuda.is_available()
    return False


def cuda_native_bf16() -> bool:
    """bf16 tensor cores on the current GPU (not the emulated bf16 of older cards)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


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
    """``auto`` -> ``bf16-mixed`` for a convolutional model on a CPU or CUDA GPU with native
    bf16, else ``32-true``; anything else is returned as given (Lightning checks it)."""
    if str(precision) != "auto":
        return precision
    if convolutional and on_cpu(accelerator) and native_bf16_flags():
        return "bf16-mixed"
    if convolutional and on_cuda(accelerator) and cuda_native_bf16():
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
    if on_cuda(accelerator):
        return describe_cuda_choice(chosen, convolutional)
    if not on_cpu(accelerator):
        return f"trainer.precision=auto -> {chosen} (neither CPU nor CUDA: set it for your device)"
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


def describe_cuda_choice(chosen: str, convolutional: bool) -> str:
    import torch

    name = torch.cuda.get_device_name()
    if chosen == "bf16-mixed":
        return f"trainer.precision=auto -> bf16-mixed: {name} has native bf16"
    if not convolutional:
        return (
            f"trainer.precision=auto -> {chosen} on {name}: MLP nets lose FID in bf16 "
            "(BENCHMARKS.md); trainer.precision=bf16-mixed forces it"
        )
    return f"trainer.precision=auto -> {chosen}: {name} has no native bf16 (before Ampere)"


def tune_cuda(trainer_cfg: dict[str, Any], matmul_precision: str | None) -> list[str]:
    """What ``precision=auto`` also sets on a CUDA run (returned, for the log line):
    TF32 matmuls unless ``matmul_precision`` was given, and ``trainer.benchmark`` (cuDNN's
    algorithm search, worth it for the fixed image shapes) unless given or the run is
    ``trainer.deterministic``."""
    import torch

    done = []
    if not matmul_precision:
        torch.set_float32_matmul_precision("high")
        done.append("float32 matmuls in TF32 (matmul_precision=high)")
    if trainer_cfg.get("benchmark") is None and not trainer_cfg.get("deterministic"):
        trainer_cfg["benchmark"] = True
        done.append("cudnn.benchmark on (fixed image shapes)")
    return done


#: Lightning's names of fp16 mixed precision (the one that needs a GradScaler).
FP16_MIXED = ("16-mixed", "16")


def check_fp16_mixed(precision: str | int | None, manual_optimization: bool) -> None:
    """Refuse ``16-mixed`` for a module that steps its optimizers itself (the GANs).

    Why refused and not fixed: the GAN's NaN guard and ``grad_clip`` read the gradients right
    after ``manual_backward``, when under fp16 they are still multiplied by the GradScaler's
    scale; the scaler's deliberate overflow probes would then stop the run (``on_nan=stop``)
    or be skipped without the scaler lowering its scale (``skip_batch``: every later update
    skipped). Doing it right (unscale, then clip and guard, let the scaler see skipped steps)
    means taking the scaler out of Lightning's MixedPrecision plugin, which unscales and steps
    it itself inside ``optimizer.step()`` (a second ``unscale_`` raises; fused Adam unscales
    inside its kernel): private plumbing, and the overflow behaviour that matters is CUDA's
    fp16 (Lightning 2.6 also runs 16-mixed on CPU, with other kernels), which cannot be run
    here. bf16-mixed has fp32's range, needs no scaler and runs as fast on every GPU since
    Ampere."""
    if str(precision) in FP16_MIXED and manual_optimization:
        raise ConfigError(
            f"trainer.precision={precision} is not supported for GANs (the NaN guard and "
            "grad_clip would see gradients before the GradScaler unscales them); use "
            "trainer.precision=bf16-mixed (GPUs since Ampere) or 32-true."
        )
