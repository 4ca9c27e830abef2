"""The console scripts (``[project.scripts]`` of pyproject.toml): each answers ``--version``
and ``--help`` before torch and Lightning are imported (a fraction of a second instead of
several), and hands everything else to its app's ``main`` (``gan_lightning.train.main``, ...).
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import NamedTuple

from gan_lightning import version_line

#: Arguments that only print something of the config (Hydra exits before the app runs).
HELP_FLAGS = ("--help", "-h", "--hydra-help")


class Command(NamedTuple):
    module: str  # holds main(argv) -> exit code, a hydra_cli app
    config_name: str  # its config in gan_lightning/conf (for --help without the module)
    summary: str  # one line for `python -m gan_lightning`


COMMANDS = {
    "gan-train": Command(
        "gan_lightning.train",
        "config",
        "train an experiment (= python train.py): gan-train experiment=... key=value",
    ),
    "gan-generate": Command(
        "gan_lightning.generate",
        "generate",
        "sample images from a checkpoint: gan-generate ckpt=<file> n=64",
    ),
    "gan-evaluate": Command(
        "gan_lightning.evaluate",
        "evaluate",
        "score checkpoints (FID/KID/IS): gan-evaluate ckpt=<file or dir>",
    ),
    "gan-report": Command(
        "gan_lightning.report", "report", "rebuild a sweep's report: gan-report <multirun dir>"
    ),
    "gan-train-classifier": Command(
        "gan_lightning.metrics.train_classifier",
        "train_classifier",
        "train the digit classifier behind the 'digits' FID ahead of time",
    ),
}


def launch(name: str, argv: list[str] | None = None) -> int:
    """Run command ``name`` on ``argv`` (default: ``sys.argv[1:]``); its exit code."""
    command = COMMANDS[name]
    args = sys.argv[1:] if argv is None else list(argv)
    if "--version" in args:
        print(version_line())
        return 0
    if any(arg in HELP_FLAGS for arg in args):
        from gan_lightning.runtime.cli import hydra_cli

        def help_only(cfg: object) -> None:  # pragma: no cover - Hydra exits before a task
            raise RuntimeError("only --help reaches this app")

        help_only.__module__ = command.module  # Hydra names the app (job) after the module
        # The same Hydra app on the same config; Hydra prints the help and never calls it.
        return hydra_cli(command.config_name)(help_only)(args)
    return import_module(command.module).main(args)


def train(argv: list[str] | None = None) -> int:
    return launch("gan-train", argv)


def generate(argv: list[str] | None = None) -> int:
    return launch("gan-generate", argv)


def evaluate(argv: list[str] | None = None) -> int:
    return launch("gan-evaluate", argv)


def report(argv: list[str] | None = None) -> int:
    return launch("gan-report", argv)


def train_classifier(argv: list[str] | None = None) -> int:
    return launch("gan-train-classifier", argv)
