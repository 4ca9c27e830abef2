"""gan_lightning/runtime/config_checks.py: one way every app checks its config.

Training's nodes are checked against their classes' signatures (tests/test_config.py and
tests/test_fuzz_config.py run that through train.py); here the apps' own top-level keys, which
go through the same type rule via :func:`app_args`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
from omegaconf import OmegaConf

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.config_checks import RunArgs, app_args, check_config, check_values


@dataclass
class Args:
    path: str | None
    count: int
    scale: float | None
    flag: bool
    style: Literal["grid", "folder"]
    sizes: list[int]


GOOD = {"path": "a.ckpt", "count": 3, "scale": None, "flag": False, "style": "grid", "sizes": [1]}


def test_app_args_returns_the_checked_values_as_the_dataclass():
    args = app_args(OmegaConf.create({**GOOD, "hydra": {"x": 1}}), Args, "app")
    assert args == Args(**GOOD)
    assert isinstance(args.sizes, list)  # plain containers, not OmegaConf nodes


def test_a_number_typed_for_a_text_key_is_the_text():
    """Hydra reads `out=2024` as an integer; for a text key it is the name the user typed."""
    assert app_args(OmegaConf.create({**GOOD, "path": 2024}), Args, "app").path == "2024"


def test_integers_are_numbers_but_not_the_reverse():
    assert app_args(OmegaConf.create({**GOOD, "scale": 2}), Args, "app").scale == 2
    with pytest.raises(ConfigError, match=r"^count=2\.5 must be an integer"):
        app_args(OmegaConf.create({**GOOD, "count": 2.5}), Args, "app")


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("count", "many", "count='many' must be an integer"),
        ("flag", "yes", "flag='yes' must be true or false"),
        ("style", "zip", "style='zip' must be one of 'grid', 'folder'"),
        ("sizes", "abc", "sizes='abc' must be a list of integers"),
        ("count", True, "count=True must be an integer"),
    ],
)
def test_a_wrong_value_is_one_line_naming_key_value_and_fix(key, value, needle):
    with pytest.raises(ConfigError) as err:
        app_args(OmegaConf.create({**GOOD, key: value}), Args, "gan-thing")
    message = str(err.value)
    assert needle in message and "\n" not in message
    assert f"({key}=...)" in message and "`gan-thing --help`" in message


def test_training_top_level_keys_use_the_same_rule():
    check_values({"seed": 3, "resume": "auto"}, RunArgs, "python train.py")
    with pytest.raises(ConfigError, match=r"^resume='sometimes' must be one of 'auto' or null"):
        check_config(OmegaConf.create({"resume": "sometimes"}))
    with pytest.raises(ConfigError, match="num_threads=0 must be >= 1"):
        check_config(OmegaConf.create({"num_threads": 0}))


@pytest.mark.parametrize(
    ("app", "args", "needle"),
    [
        ("train", ["data.batch_size=abc"], "data.batch_size='abc' must be an integer"),
        ("generate", ["ckpt=x.ckpt", "n=many"], "n='many' must be an integer"),
        ("evaluate", ["baseline=train", "metrics.num_samples=abc"], "metrics.num_samples='abc'"),
        ("evaluate", ["ckpt=x.ckpt", "ema=maybe"], "ema='maybe' must be true or false or null"),
        ("train_classifier", ["epochs=two"], "epochs='two' must be an integer"),
    ],
)
def test_every_app_stops_a_wrong_value_with_one_line_before_any_work(
    app, args, needle, tmp_path, capsys
):
    from gan_lightning import evaluate, generate, train
    from gan_lightning.metrics import train_classifier

    main = {
        "train": train.main,
        "generate": generate.main,
        "evaluate": evaluate.main,
        "train_classifier": train_classifier.main,
    }[app]
    extra = [f"hydra.run.dir={tmp_path}", "logger=none"] if app == "train" else []
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and needle in err and len(err.splitlines()) == 1, err
