"""The D:G update schedule, as a pure function and as counted optimizer steps in a real Trainer."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.modules.schedule import UpdateSchedule
from tests.helpers import tensor_loader, tiny_gan


def test_pattern_d_steps_3():
    s = UpdateSchedule(d_steps=3)
    assert [s.updates(i) for i in range(6)] == [
        (True, False),
        (True, False),
        (True, True),
        (True, False),
        (True, False),
        (True, True),
    ]


def test_pattern_g_steps_3():
    s = UpdateSchedule(g_steps=3)
    assert [s.updates(i) for i in range(6)] == [
        (True, True),
        (False, True),
        (False, True),
        (True, True),
        (False, True),
        (False, True),
    ]


@pytest.mark.parametrize("d,g", [(1, 1), (3, 1), (1, 3), (2, 1)])
def test_optimizer_steps_matches_pattern(d, g):
    s = UpdateSchedule(d, g)
    for n in range(12):
        assert s.optimizer_steps(n) == sum(sum(s.updates(i)) for i in range(n))


@pytest.mark.parametrize(
    "kwargs", [{"d_steps": 0}, {"g_steps": -1}, {"d_steps": 2, "g_steps": 2}, {"d_steps": 1.5}]
)
def test_invalid(kwargs):
    with pytest.raises(ConfigError):
        UpdateSchedule(**kwargs)


class StepRecorder(pl.Callback):
    """Records (batch index, which net) for every optimizer.step() Lightning performs."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, str]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        net = (
            "G"
            if optimizer.param_groups[0]["params"][0] is next(pl_module.generator.parameters())
            else "D"
        )
        self.steps.append((pl_module.batches_seen, net))


def fit(model, max_batches, ckpt_path=None, default_root_dir=None, callbacks=()):
    recorder = StepRecorder()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=model.optimizer_steps_for(max_batches),
        max_epochs=100,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder, *callbacks],
        default_root_dir=default_root_dir,
    )
    trainer.fit(model, train_dataloaders=tensor_loader(), ckpt_path=ckpt_path)
    return trainer, recorder


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # Algorithm 1 with k = 3: D on every batch, G after every third D step.
        (
            {"d_steps": 3},
            [
                (0, "D"),
                (1, "D"),
                (2, "D"),
                (2, "G"),
                (3, "D"),
                (4, "D"),
                (5, "D"),
                (5, "G"),
                (6, "D"),
            ],
        ),
        # Seed 003's reverse ratio: G on every batch, D on the first batch of each cycle of 3.
        (
            {"g_steps": 3},
            [
                (0, "D"),
                (0, "G"),
                (1, "G"),
                (2, "G"),
                (3, "D"),
                (3, "G"),
                (4, "G"),
                (5, "G"),
                (6, "D"),
                (6, "G"),
            ],
        ),
        ({}, [(i, n) for i in range(7) for n in ("D", "G")]),
    ],
)
def test_trainer_steps_follow_schedule_and_budget_counts_batches(kwargs, expected):
    model = tiny_gan(**kwargs)
    trainer, recorder = fit(model, max_batches=7)
    assert recorder.steps == expected
    assert model.batches_seen == 7  # the budget is in real batches, whatever the ratio
    assert trainer.global_step == len(expected)  # Lightning's counter: optimizer steps


def test_schedule_counter_survives_checkpoint_resume(tmp_path):
    model = tiny_gan(d_steps=3)
    trainer, _ = fit(model, max_batches=4, default_root_dir=tmp_path)
    ckpt = tmp_path / "mid.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert state["gan_lightning"]["batches_seen"] == 4

    resumed = tiny_gan(d_steps=3)
    _, recorder = fit(resumed, max_batches=7, ckpt_path=str(ckpt), default_root_dir=tmp_path)
    # Batches 4, 5, 6 continue the cycle: the G step comes on batch 5 (the 6th), not batch 6.
    assert recorder.steps == [(4, "D"), (5, "D"), (5, "G"), (6, "D")]
    assert resumed.batches_seen == 7
