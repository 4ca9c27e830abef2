"""What precision/recall/density/coverage and intra-class FID cost next to FID, on one CPU thread
(the scoring's own setting, gan_lightning/metrics/threads.py).

    python -m benchmarks.prdc [--sizes 2000 10000] [--dims 128 2048] [--repeat 3]

Random features stand in for extracted ones (the cost depends only on their number and
dimension): ``FID`` is torchmetrics' FID compute on N real + N generated features, ``PRDC`` the
four k-NN scores (k=3 and 5) on the same, ``intra-FID`` ten per-class FIDs (N/10 per class).
Extraction and generation, shared by all of them, are not included. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from gan_lightning.metrics.feature_sets import Precomputed
from gan_lightning.metrics.intra_fid import intra_class_fid
from gan_lightning.metrics.prdc import prdc


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = FrechetInceptionDistance(feature=Precomputed(real.shape[1]))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        table(args)
    finally:
        torch.set_num_threads(threads)
    return 0


def table(args: argparse.Namespace) -> None:
    print("| N real = N generated | features | FID | PRDC | intra-FID (10 classes) |")
    print("|---|---|---|---|---|")
    for dim in args.dims:
        for n in args.sizes:
            g = torch.Generator().manual_seed(0)
            real = torch.randn(n, dim, generator=g).relu()  # ReLU features, like both extractors'
            fake = (torch.randn(n, dim, generator=g) * 1.1 + 0.1).relu()
            labels = torch.arange(n) % 10
            times = [
                best_of(lambda: fid(real, fake), args.repeat),  # noqa: B023 - called at once
                best_of(lambda: prdc(real, fake), args.repeat),  # noqa: B023
                best_of(
                    lambda: intra_class_fid(real, labels, fake, labels, 10),  # noqa: B023
                    args.repeat,
                ),
            ]
            print(f"| {n} | {dim} | " + " | ".join(f"{t:.2f} s" for t in times) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
