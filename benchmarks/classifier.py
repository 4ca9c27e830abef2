"""The digits extractor's forward pass at the training-time setting (batches of 500, one
thread, as scoring runs), the classifier as trained against its inference form
(:meth:`~gan_lightning.metrics.classifier.DigitClassifier.inference_body`), side by side:

    python -m benchmarks.classifier [--batch 500] [--repeats 20]

The classifier's weights are random (the time does not depend on them). Prints both
medians, their ratio, and the largest difference of the features and logits.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from gan_lightning.metrics.classifier import DigitClassifier
from gan_lightning.metrics.extractors import DigitsExtractor


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # oneDNN builds its primitives on the first call
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    classifier = DigitClassifier()
    for module in classifier.modules():  # non-trivial BatchNorm statistics to fold
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    extractor = DigitsExtractor(classifier.eval())
    images = torch.rand(args.batch, 1, 28, 28)
    with torch.inference_mode():
        trained = median_ms(lambda: classifier.features_and_logits(images), args.repeats)
        inference = median_ms(lambda: extractor(images), args.repeats)
        (f0, z0), (f1, z1) = classifier.features_and_logits(images), extractor(images)
    print(f"batch {args.batch}, {args.threads} thread(s), median of {args.repeats}:")
    print(f"  classifier as trained  {trained:7.2f} ms")
    print(f"  inference form         {inference:7.2f} ms  ({trained / inference:.2f}x faster)")
    print(
        f"  largest difference: features {float((f0 - f1).abs().max()):.2e}, "
        f"logits {float((z0 - z1).abs().max()):.2e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
