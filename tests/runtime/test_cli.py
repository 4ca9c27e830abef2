"""gan_lightning/runtime/cli.py: the one command-line style of every app."""

from __future__ import annotations

import pytest

from gan_lightning import evaluate, generate, report, train
from gan_lightning.metrics import train_classifier
from gan_lightning.runtime.cli import null_group_overrides


@pytest.mark.parametrize(
    ("app", "usage"),
    [
        (train.main, "Usage: python train.py [group=option ...] [key=value ...]"),
        (generate.main, "Usage: gan-generate ckpt=<path.ckpt> [key=value ...]"),
        (evaluate.main, "Usage: gan-evaluate ckpt=<file.ckpt | directory> [key=value ...]"),
        (report.main, "Usage: gan-report <sweep dir>"),
        (train_classifier.main, "Usage: python -m gan_lightning.metrics.train_classifier"),
    ],
)
def test_every_help_starts_with_what_the_app_does_and_a_usage_line(app, usage, capsys):
    assert app(["--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert usage in "\n".join(lines[:8]), lines[:8]


def test_a_user_error_is_one_line_and_exit_code_2(capsys):
    assert report.main(["sweep_dir=/nonexistent/sweep"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: sweep_dir=/nonexistent/sweep does not exist")
    assert len(err.splitlines()) == 1


def test_group_null_means_the_groups_none_option():
    assert null_group_overrides(["logger=null", "+metrics=None", "seed=null"]) == [
        "logger=none",
        "metrics=none",
        "seed=null",  # not a group: a plain null value
    ]
