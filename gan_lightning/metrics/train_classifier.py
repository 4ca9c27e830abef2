"""Train (or retrain) the ``digits`` feature extractor ahead of time.

    python -m gan_lightning.metrics.train_classifier                 # -> ./data/classifiers/
    python -m gan_lightning.metrics.train_classifier --data-dir /data --force

Training also happens automatically the first time a run or ``gan-evaluate`` needs the
classifier; this command only moves that minute to a moment of your choosing (e.g. a CI cache
step). MNIST is fetched through the project's usual chain if it is not under ``--data-dir``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gan_lightning.errors import ConfigError, DataSourceError
from gan_lightning.metrics.classifier import (
    default_classifier_path,
    ensure_classifier,
    load_classifier,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gan_lightning.metrics.train_classifier",
        description="Train the MNIST digit classifier used as the `digits` FID/KID/IS extractor.",
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("GAN_LIGHTNING_DATA_DIR", "data"),
        help="MNIST location and cache root (default: $GAN_LIGHTNING_DATA_DIR or ./data)",
    )
    parser.add_argument(
        "--output", default=None, help="weights file (default: <data-dir>/classifiers/...)"
    )
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="retrain even if a cached file exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")

    path = args.output or default_classifier_path(args.data_dir)
    try:
        ensure_classifier(path, args.data_dir, force=args.force, epochs=args.epochs, seed=args.seed)
        _, info = load_classifier(path)
    except (ConfigError, DataSourceError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    accuracy = info.get("test_accuracy")
    print(f"{path}: MNIST test accuracy {accuracy:.4f}" if accuracy is not None else str(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
