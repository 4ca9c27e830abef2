"""Train (or retrain) the ``digits`` feature extractor ahead of time.

    python -m gan_lightning.metrics.train_classifier                 # -> ./data/classifiers/
    python -m gan_lightning.metrics.train_classifier paths.data_dir=/data force=true

Training also happens automatically the first time a run or ``gan-evaluate`` needs the
classifier; this command only moves that minute to a moment of your choosing (e.g. a CI cache
step). MNIST is fetched through the project's usual chain if it is not under ``data_dir``.
Keys: ``conf/train_classifier.yaml`` (``--help`` prints them).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from omegaconf import DictConfig

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.classifier import (
    default_classifier_path,
    ensure_classifier,
    load_classifier,
)
from gan_lightning.runtime.cli import hydra_cli
from gan_lightning.runtime.config_checks import app_args
from gan_lightning.runtime.filesystem import check_input_dir, check_output_file


@dataclass
class ClassifierArgs:
    """``conf/train_classifier.yaml``'s keys."""

    data_dir: str
    output: str | None
    epochs: int
    seed: int
    force: bool


@hydra_cli("train_classifier")
def main(cfg: DictConfig) -> None:
    """Train unless cached (or ``force=true``), then print the file and its test accuracy."""
    args = app_args(cfg, ClassifierArgs, "python -m gan_lightning.metrics.train_classifier")
    if args.epochs < 1:
        raise ConfigError(f"epochs={args.epochs} must be >= 1.")
    path = args.output or default_classifier_path(args.data_dir)
    check_input_dir(args.data_dir, "data_dir", "point data_dir (paths.data_dir) at a folder")
    check_output_file(path, "the classifier file", "pass output=<a writable file>")
    ensure_classifier(path, args.data_dir, force=args.force, epochs=args.epochs, seed=args.seed)
    _, info = load_classifier(path)
    accuracy = info.get("test_accuracy")
    print(f"{path}: MNIST test accuracy {accuracy:.4f}" if accuracy is not None else str(path))


if __name__ == "__main__":
    sys.exit(main())
