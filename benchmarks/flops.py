"""FLOPs per training step and the machine's measured matmul / convolution peaks.

The achieved FLOP rate of a path is ``FLOPs per step x steps per second``, with the FLOPs of
one plain-loop step counted by ``torch.utils.flop_counter.FlopCounterMode`` (forward and
backward matmuls and convolutions; the optimizer's elementwise work is not counted, as
usual for FLOP rates). The peaks are measured in the same process, right before the
throughput runs, with the same thread count: the best of a few large fp32 / bf16 matrix
products, and of a few large, well-shaped convolutions in NCHW and channels_last (what oneDNN
runs fastest on this CPU). Comparing a model's
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


def matmul_peak(dtype: torch.dtype, seconds: float = 0.2, repeats: int = 5) -> float:
    """Best GFLOP/s of square matrix products of a few sizes (MKL for fp32, oneDNN for bf16)."""
    best = 0.0
    for size in (512, 1024, 2048):
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        best = max(best, _rate(lambda a=a, b=b: torch.mm(a, b), 2.0 * size**3, seconds, repeats))
    return best / 1e9


#: The convolutions the conv peak is the best of: (batch, channels in = out, side, kernel), 3x3
#: layers at padding 1 and DCGAN's own 4x4 stride-2 layer shape, in NCHW and channels_last.
PEAK_CONVS = ((32, 128, 28, 3), (128, 128, 14, 3), (64, 256, 14, 3), (128, 64, 14, 4))


def conv_peak(dtype: torch.dtype, seconds: float = 0.2, repeats: int = 5) -> float:
    best = 0.0
    for n, c, side, k in PEAK_CONVS:
        stride, pad, out = (2, 1, side // 2) if k == 4 else (1, k // 2, side)
        w = torch.randn(c, c, k, k).to(dtype)
        flops = 2.0 * n * c * out * out * c * k * k
        for memory_format in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(n, c, side, side).to(dtype).contiguous(memory_format=memory_format)
            fn = lambda x=x, w=w, s=stride, p=pad: F.conv2d(x, w, stride=s, padding=p)  # noqa: E731
            best = max(best, _rate(fn, flops, seconds, repeats))
    return best / 1e9


def measure_peaks(seconds: float = 0.2, repeats: int = 5) -> Peaks:
    """Each peak is the best window of the best shape: the machine's capability, as close to
    an idle moment as the run had."""
    with torch.no_grad():
        return Peaks(
            matmul_fp32=matmul_peak(torch.float32, seconds, repeats),
            conv_fp32=conv_peak(torch.float32, seconds, repeats),
            matmul_bf16=matmul_peak(torch.bfloat16, seconds, repeats),
            conv_bf16=conv_peak(torch.bfloat16, seconds, repeats),
        )
