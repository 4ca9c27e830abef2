"""KID's compute at the training-time setting, torchmetrics' loop against :class:`BlockKID`,
side by side (interleaved repeats, one thread):

    python -m benchmarks.kid [--n 2000] [--subsets 100] [--subset-size 500] [--repeats 3]

The features are random (128-d, like the digit classifier's); the time does not depend on
their values. Prints both medians, their ratio, and the largest difference of the scores.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchmetrics.image.kid import KernelInceptionDistance

from gan_lightning.metrics.kid import BlockKID
from gan_lightning.metrics.scores import Precomputed


def timed(
    cls: type, real: torch.Tensor, fake: torch.Tensor, subsets: int, size: int, again: bool = False
):
    """One compute's seconds and scores; ``again``: the second compute of a metric that keeps
    its real features (training's periodic scoring: new generated features, same draws)."""
    metric = cls(feature=Precomputed(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real, real=True)
    metric.update(fake.flip(0) if again else fake, real=False)
    if again:
        torch.manual_seed(0)
        metric.compute()
        metric.fake_features.clear()
        metric.update(fake, real=False)
    torch.manual_seed(0)
    start = time.perf_counter()
    mean, std = metric.compute()
    return time.perf_counter() - start, float(mean), float(std)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--subsets", type=int, default=100)
    parser.add_argument("--subset-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    real = torch.randn(args.n, 128, generator=g).relu()
    fake = (torch.randn(args.n, 128, generator=g) + 0.1).relu()
    kinds = (
        ("torchmetrics", KernelInceptionDistance, False),
        ("BlockKID", BlockKID, False),
        ("BlockKID again", BlockKID, True),
    )
    times: dict[str, list[float]] = {name: [] for name, _, _ in kinds}
    scores: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeats):
        for name, cls, again in kinds:
            seconds, mean, std = timed(cls, real, fake, args.subsets, args.subset_size, again)
            times[name].append(seconds)
            scores[name] = (mean, std)
    slow, fast, warm = (statistics.median(times[name]) for name, _, _ in kinds)
    diff = max(
        abs(a - b)
        for name in ("BlockKID", "BlockKID again")
        for a, b in zip(scores["torchmetrics"], scores[name], strict=True)
    )
    print(
        f"KID of {args.n} vs {args.n} features, {args.subsets} subsets of {args.subset_size}, "
        f"1 thread: torchmetrics {slow:.3f} s, BlockKID {fast:.3f} s ({slow / fast:.1f}x), "
        f"BlockKID's next compute on the same real features {warm:.3f} s ({slow / warm:.1f}x); "
        f"largest score difference {diff:.2e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
