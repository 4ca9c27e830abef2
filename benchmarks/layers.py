"""The 28x28 DCGAN's convolutions one by one: how close each gets to the conv peak.

    python -m benchmarks.layers [--batch 128] [--threads N]

For every convolution of ``model=dcgan`` on MNIST, forward alone and forward + backward
(input and weight gradients), NCHW and channels_last, in GFLOP/s. It is the evidence for the
DCGAN's FLOP-rate floor in BENCHMARKS.md: the two 64<->128-channel layers carry ~90% of the
FLOPs and run near the peak, while the single-channel layers (D's first convolution, G's last
transposed convolution) and the 1x1 -> 7x7 projection run at a small fraction of it whatever
the layout.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn


def _rate(fn: Callable[[], object], flops: float, seconds: float = 0.2, repeats: int = 4) -> float:
    fn()
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            fn()
            calls += 1
        best = max(best, calls * flops / max(elapsed, 1e-9))
    return best / 1e9


def dcgan_layers(batch: int) -> dict[str, tuple[nn.Module, tuple[int, ...], float]]:
    """name -> (layer, input shape, forward FLOPs) for the 28x28 DCGAN with base width 64."""
    b = batch
    return {
        "G 1x1 -> 7x7 (100 -> 128)": (
            nn.ConvTranspose2d(100, 128, 7, 1, 0, bias=False),
            (b, 100, 1, 1),
            2.0 * b * 100 * 128 * 49,
        ),
        "G 7 -> 14 (128 -> 64)": (
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
            (b, 128, 7, 7),
            2.0 * b * 49 * 128 * 64 * 16,
        ),
        "G 14 -> 28 (64 -> 1)": (
            nn.ConvTranspose2d(64, 1, 4, 2, 1),
            (b, 64, 14, 14),
            2.0 * b * 196 * 64 * 16,
        ),
        "D 28 -> 14 (1 -> 64)": (
            nn.Conv2d(1, 64, 4, 2, 1),
            (b, 1, 28, 28),
            2.0 * b * 196 * 64 * 16,
        ),
        "D 14 -> 7 (64 -> 128)": (
            nn.Conv2d(64, 128, 4, 2, 1, bias=False),
            (b, 64, 14, 14),
            2.0 * b * 49 * 128 * 64 * 16,
        ),
    }


def measure(batch: int) -> list[tuple[str, str, float, float]]:
    rows = []
    for name, (layer, shape, flops) in dcgan_layers(batch).items():
        for layout in ("NCHW", "channels_last"):
            fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            net = layer.to(memory_format=fmt)
            x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_(True)
            grad = torch.randn_like(net(x))

            def forward(net: nn.Module = net, x: torch.Tensor = x) -> None:
                with torch.no_grad():
                    net(x)

            def forward_backward(net: nn.Module = net, x: torch.Tensor = x, g=grad) -> None:
                x.grad = None
                net.zero_grad(set_to_none=True)
                net(x).backward(g)

            rows.append((name, layout, _rate(forward, flops), _rate(forward_backward, 3 * flops)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, {torch.get_num_threads()} thread(s); GFLOP/s")
    print("| layer | layout | forward | forward + backward |\n|---|---|---:|---:|")
    for name, layout, fwd, fwd_bwd in measure(args.batch):
        print(f"| {name} | {layout} | {fwd:.0f} | {fwd_bwd:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
