"""`seed=... trainer.deterministic=true` makes a CPU run repeat its losses step for step."""

from __future__ import annotations

import csv

import pytest

from gan_lightning.train import run
from tests.conftest import SMOKE, compose_config

pytestmark = pytest.mark.slow


def losses(run_dir) -> list[tuple[str, str]]:
    with open(run_dir / "csv" / "version_0" / "metrics.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("train/d_loss_step")]
    return [(r["train/d_loss_step"], r["train/g_loss_step"]) for r in rows]


def test_same_seed_same_losses_step_for_step(mnist_dir, tmp_path, one_thread):
    overrides = [
        *[o for o in SMOKE if not o.startswith(("logger=", "trainer.max_steps"))],
        "logger=csv",
        "trainer.max_steps=12",
        "trainer.log_every_n_steps=1",
        "trainer.deterministic=true",
        "model.discriminator.dropout=0.3",  # random masks must repeat too
        "model.ema_decay=0.9",
        "seed=11",
        f"paths.data_dir={mnist_dir}",
    ]
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run(compose_config(overrides, first))
    run(compose_config(overrides, second))
    run(compose_config([*overrides, "seed=12"], other))
    assert len(losses(first)) == 12
    assert losses(first) == losses(second)  # the logged text, digit for digit
    assert losses(first) != losses(other)
