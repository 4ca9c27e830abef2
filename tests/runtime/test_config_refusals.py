"""Inputs that used to be accepted and silently ignored are refused with the reason
(runtime/config_checks.py): unknown top-level ``+`` keys and Trainer values that Lightning
takes although they cannot be meant."""

from __future__ import annotations

import re

import pytest

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.config_checks import check_config
from gan_lightning.train import main
from tests.conftest import compose_config


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("+lr_typo=0.1", "lr_typo is not a key of the training config"),
        ("+epochs=3", "drop +epochs=..., or put it where it belongs"),
        ("+paths.cache_dir=/tmp/x", "paths.cache_dir is not a key of paths"),
        ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps=0 must be >= 1"),
        ("+trainer.val_check_interval=0", "trainer.val_check_interval=0 must be a fraction"),
        ("+trainer.val_check_interval=0.0", "trainer.limit_val_batches=0"),
        ("trainer.check_val_every_n_epoch=0", "must be >= 1 or null"),
        ("+trainer.accumulate_grad_batches=0", "accumulate_grad_batches=0 must be >= 1"),
        ("trainer.limit_train_batches=0", "0 would train nothing"),
        ("trainer.limit_train_batches=0.0", "0 would train nothing"),
        ("trainer.max_epochs=0", "must be >= 1, or -1 for no epoch limit"),
        ("trainer.num_sanity_val_steps=-2", "trainer.num_sanity_val_steps=-2 must be >= 0"),
    ],
)
def test_silently_ignored_inputs_are_refused(override, needle, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        check_config(compose_config([override], tmp_path))


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.limit_val_batches=0"],  # the documented way to skip validation
        ["+trainer.val_check_interval=0.5", "trainer.max_epochs=-1"],
        ["trainer.check_val_every_n_epoch=null"],
        ["+trainer.enable_checkpointing=true"],  # a Trainer argument: checked by its signature
        ["+callbacks.extra._target_=gan_lightning.callbacks.LearningRates"],
        ["experiment=seed003_mlp_gan_sweep", "lr=0.001"],  # a key the experiment interpolates
    ],
)
def test_meaningful_values_and_extension_points_pass(overrides, tmp_path):
    check_config(compose_config(overrides, tmp_path))


def test_refusal_is_one_line_and_exit_code_2(tmp_path, capsys):
    code = main([f"hydra.run.dir={tmp_path}", "+foo=1", "logger=none", "metrics=none"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert lines == [lines[0]] and "foo is not a key of the training config" in lines[0]
