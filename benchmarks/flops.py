"""FLOPs per training step and the machine's measured matmul / convolution peaks.

The achieved FLOP rate of a path is ``FLOPs per step x steps per second``, with the FLOPs of
one plain-loop step counted by ``torch.utils.flop_counter.FlopCounterMode`` (forward and
backward matmuls and convolutions; the optimizer's elementwise work is not counted, as
usual for FLOP rates). The peaks are measured in the same process, right before the
throughput runs, with the same thread count: a large fp32 / bf16 matrix product, and a
large, well-shaped convolution (what oneDNN runs fastest on this CPU). Comparing a model's
rate against them says how far its small layers are from what the machine can do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.cases import CaseData
from benchmarks.plain import Options, PlainTrainer, in_memory_batches


def step_flops(data: CaseData, options: Options | None = None) -> dict[str, int]:
    """FLOPs of one training step of the plain loop (after one warm-up step), in total and per
    operator (``mm``, ``addmm``, ``convolution``, ... forward and backward)."""
    trainer = PlainTrainer(data, (options or Options()).with_(compile=False))
    batches = in_memory_batches(data)
    trainer.step(next(batches))
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.step(next(batches))
    per_op = {
        str(op).split(".")[-1]: int(n) for op, n in counter.get_flop_counts()["Global"].items()
    }
    return {"total": int(counter.get_total_flops()), **per_op}


def _rate(fn: Callable[[], object], flops: float, seconds: float, repeats: int) -> float:
    """Best FLOP/s of ``repeats`` windows of about ``seconds`` each (after one warm-up call)."""
    fn()
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        best = max(best, calls * flops / elapsed)
    return best


@dataclass
class Peaks:
    """Measured GFLOP/s: the best large matmul and the best large convolution, per dtype."""

    matmul_fp32: float
    conv_fp32: float
    matmul_bf16: float
    conv_bf16: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def matmul_peak(dtype: torch.dtype, size: int = 1024, seconds: float = 0.3, repeats: int = 3):
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    return _rate(lambda: torch.mm(a, b), 2.0 * size**3, seconds, repeats) / 1e9


#: The peak convolution: a wide 3x3 layer on a 28x28 map (stride 1, padding 1).
PEAK_CONV = {"batch": 32, "channels": 128, "side": 28, "kernel": 3}


def conv_peak(dtype: torch.dtype, seconds: float = 0.3, repeats: int = 3) -> float:
    n, c, s, k = (PEAK_CONV[key] for key in ("batch", "channels", "side", "kernel"))
    x = torch.randn(n, c, s, s).to(dtype)
    w = torch.randn(c, c, k, k).to(dtype)
    flops = 2.0 * n * c * s * s * c * k * k
    return _rate(lambda: F.conv2d(x, w, padding=k // 2), flops, seconds, repeats) / 1e9


def measure_peaks(seconds: float = 0.3, repeats: int = 3) -> Peaks:
    with torch.no_grad():
        return Peaks(
            matmul_fp32=matmul_peak(torch.float32, seconds=seconds, repeats=repeats),
            conv_fp32=conv_peak(torch.float32, seconds, repeats),
            matmul_bf16=matmul_peak(torch.bfloat16, seconds=seconds, repeats=repeats),
            conv_bf16=conv_peak(torch.bfloat16, seconds, repeats),
        )
