"""``trainer.precision=auto`` (the default): bf16 mixed precision where it pays and holds.

CPUs with AVX512-BF16 (AMD Zen 4, Intel Cooper Lake and later) or AMX (Intel Sapphire Rapids
and later) run oneDNN's bf16 matmuls and convolutions at 1.8-5x their fp32 rate; elsewhere
PyTorch emulates bf16 and it is *slower* than fp32. Measured here (BENCHMARKS.md, the precision
table: same batches, 2 seeds, digits FID of 10k samples): the DCGAN trained 1.4x faster in
bf16-mixed at the same FID (118 vs 117), the MLP VAE the same; the MLP GAN lost FID (252 vs 234)
and gained little or no speed (its small matmuls gain less than the casts cost). So ``auto``
considers ``bf16-mixed`` only for models with convolutions on a CPU with native bf16, and
``32-true`` for everything else on a CPU.

The flag alone is not enough: on an Intel Xeon that reports ``avx512_bf16`` (no AMX exposed)
bf16 trained the DCGAN at 0.62-0.81x the fp32 speed (BENCHMARKS.md, 2026-12-06), while an AMD
EPYC Zen 4 ran it 1.16-1.41x faster. So on such a CPU ``auto`` *measures*: a few forward and
backward passes of a copy of the model's nets (its ``precision_probe``) on a small batch of the
run's image shape, fp32 against bf16 autocast, interleaved, medians compared (about a second;
nothing of the run changes: a deep copy, a private random stream). bf16 is chosen only where it
is at least :data:`MIN_SPEEDUP` faster. The verdict is cached per CPU model, thread count, torch
version, nets and batch shape in ``~/.cache/gan_lightning/precision.json`` (``XDG_CACHE_HOME``
or ``GAN_LIGHTNING_CACHE_DIR`` move it), so later runs start without measuring.

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

import hashlib
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Sequence
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


#: bf16 must be at least this much faster than fp32 for ``auto`` to pick it on a CPU.
MIN_SPEEDUP = 1.05
#: The probe's batch (at most): the speed ratio of convolutions hardly depends on it.
PROBE_BATCH = 32


def cache_file() -> Path:
    root = os.environ.get("GAN_LIGHTNING_CACHE_DIR")
    if not root:
        root = str(
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan_lightning"
        )
    return Path(root) / "precision.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def probe_key(model: Any, image_shape: Sequence[int], batch_size: int) -> str:
    """What the measured ratio depends on: the CPU, its threads, torch, the nets, the batch."""
    import torch

    nets = [f"{n}:{tuple(p.shape)}" for n, p in model.named_parameters()]
    text = json.dumps(
        [
            cpu_model(),
            sorted(native_bf16_flags()),
            torch.get_num_threads(),
            torch.__version__,
            type(model).__name__,
            nets,
            list(image_shape),
            int(batch_size),
        ]  # fmt: skip
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def measure_bf16_speedup(
    model: Any, image_shape: Sequence[int], batch_size: int, repeats: int = 4
) -> float:
    """fp32 time / bf16-autocast time of one forward and backward pass of ``model``'s
    ``precision_probe`` (medians of ``repeats`` interleaved pairs, after one warm-up each), on
    a deep copy and a private random stream: the run's weights, statistics and streams stay."""
    import copy

    import torch

    probe_model = copy.deepcopy(model).cpu()
    n = max(2, min(int(batch_size), PROBE_BATCH))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        images = torch.rand(n, *[int(s) for s in image_shape]) * 2 - 1

        def step(bf16: bool) -> float:
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = probe_model.precision_probe(images)
            loss.float().backward()
            probe_model.zero_grad(set_to_none=True)
            return time.perf_counter() - start

        step(False), step(True)  # warm-up: oneDNN picks its kernels on the first call
        fp32, bf16 = [], []
        for _ in range(int(repeats)):
            fp32.append(step(False))
            bf16.append(step(True))
    return statistics.median(fp32) / statistics.median(bf16)


def cpu_bf16_speedup(model: Any, image_shape: Sequence[int], batch_size: int) -> float | None:
    """The cached or freshly measured bf16 speed-up of ``model`` on this CPU; ``None`` where
    the model has no ``precision_probe`` (then the CPU flag decides, as before)."""
    if not callable(getattr(model, "precision_probe", None)):
        return None
    key = probe_key(model, image_shape, batch_size)
    path = cache_file()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), (int, float)):
        return float(known[key])
    speedup = measure_bf16_speedup(model, image_shape, batch_size)
    try:  # a cache that cannot be written costs the next run one measurement, nothing else
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({**known, key: round(speedup, 4)}, indent=1))
        os.replace(partial, path)
    except OSError as err:
        log.debug("precision cache not written (%s)", err)
    return speedup


def choose_precision(
    precision: str | int | None,
    accelerator: str | None,
    model: Any,
    image_shape: Sequence[int] | None = None,
    batch_size: int | None = None,
) -> str | int | None:
    """:func:`resolve_precision` for ``model``, saying in the log (rank zero) what ``auto``
    chose and why; on a CPU with native bf16 and a convolutional model, bf16 only where a
    measurement (:func:`cpu_bf16_speedup`, given the run's image shape and batch) says it pays."""
    from pytorch_lightning.utilities import rank_zero_only

    convolutional = has_conv_weights(model)
    chosen = resolve_precision(precision, accelerator, convolutional)
    if str(precision) != "auto":
        return chosen
    speedup = None
    if chosen == "bf16-mixed" and on_cpu(accelerator) and image_shape is not None:
        speedup = cpu_bf16_speedup(model, image_shape, int(batch_size or PROBE_BATCH))
    if speedup is not None and speedup < MIN_SPEEDUP:
        chosen = "32-true"
    if rank_zero_only.rank == 0:
        if speedup is None:
            log.info(describe_choice(accelerator, convolutional))
        else:
            log.info(
                "trainer.precision=auto -> %s: bf16 runs this model at %.2fx the fp32 speed on "
                "this CPU (measured once, cached in %s; bf16 needs >= %.2fx)",
                chosen, speedup, cache_file(), MIN_SPEEDUP,
            )  # fmt: skip
    return chosen


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
