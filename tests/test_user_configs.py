"""A config folder of the user's own (``--config-dir DIR`` / ``hydra.searchpath=[file://DIR]``)
adds experiments and group options next to the built-in ones, and every place that composes a
config sees it: the one-line config checks, ``resume=auto``, ``train.py``, ``gan-generate``,
``gan-evaluate``, the DDP relaunch of a multirun job and the Python API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra.conf import ConfigSourceInfo
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict

from gan_lightning.api import compose
from gan_lightning.errors import ConfigError
from gan_lightning.runtime.cli import (
    CONFIG_DIR,
    check_composition,
    forget_hydra_run,
    null_group_overrides,
)
from gan_lightning.runtime.config_search import compose_config, parse_command_line
from gan_lightning.runtime.distributed import job_command
from gan_lightning.runtime.resume import resume_argv
from tests.conftest import REPO, SMOKE
from tests.metrics.helpers import metrics_overrides, random_classifier_file

#: The page whose config folder these tests build and run.
EXTENDING = REPO / "docs" / "extending.md"


def documented_configs() -> dict[str, str]:
    """The files of the user's folder exactly as docs/extending.md shows them: its ```yaml
    blocks that open with ``# my_configs/<path>`` (after an experiment's package line)."""
    pattern = r"```yaml\n((?:# @package _global_\n)?# my_configs/([\w/]+\.yaml).*?)```"
    blocks = re.findall(pattern, EXTENDING.read_text(), re.S)
    return {path: text for text, path in blocks}


USER_CONFIGS = documented_configs()


def test_the_page_shows_every_file_of_the_folder():
    assert {
        "experiment/mine.yaml",
        "experiment/mine_sweep.yaml",
        "model/generator/mine.yaml",
        "model/discriminator/mine.yaml",
        "data/mine.yaml",
    } <= set(USER_CONFIGS)


def write_user_configs(root: Path) -> Path:
    folder = root / "my_configs"
    for name, text in USER_CONFIGS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


@pytest.fixture
def user_dir(tmp_path) -> Path:
    return write_user_configs(tmp_path)


def check_mine(cfg) -> None:
    assert cfg.task_name == "mine" and list(cfg.data.digits) == [3] and cfg.data.batch_size == 8
    assert cfg.data._target_ == "gan_lightning.data.mnist.MNISTDataModule"  # from the built-in
    assert list(cfg.model.generator.hidden_sizes) == [24] and not cfg.model.generator.batch_norm
    assert cfg.model.generator._target_ == "gan_lightning.nets.mlp.MLPGenerator"
    assert list(cfg.model.discriminator.hidden_sizes) == [20]
    assert cfg.model.generator.latent_dim == 16 and cfg.model._target_.endswith(".GAN")


# --------------------------------------------------------------------------- composing
def test_user_options_compose_next_to_the_built_in_ones(user_dir, tmp_path):
    check_mine(compose(["experiment=mine"], config_dir=user_dir, output_dir=tmp_path / "run"))
    # Group options one by one, and the built-in defaults and experiments, with the folder there.
    cfg = compose(["model/generator=mine", "data=mine"], config_dir=user_dir)
    assert list(cfg.model.generator.hidden_sizes) == [24] and list(cfg.data.digits) == [3]
    assert list(cfg.model.discriminator.hidden_sizes) == [512, 256, 128]  # built-in default
    builtin = compose(["experiment=seed004_mlp_gan"], config_dir=user_dir, output_dir=tmp_path)
    assert builtin == compose(["experiment=seed004_mlp_gan"], output_dir=tmp_path)
    assert compose(["model=dcgan"], config_dir=user_dir).model.generator._target_.endswith(
        "DCGANGenerator"
    )


def test_searchpath_and_config_dir_find_the_same_options(user_dir):
    by_dir = parse_command_line(["--config-dir", str(user_dir), "experiment=mine"])
    by_path = parse_command_line([f"hydra.searchpath=[file://{user_dir}]", "experiment=mine"])
    assert by_dir.search_path == by_path.search_path == [f"file://{user_dir.resolve()}"]
    assert by_dir.config_dirs == [user_dir.resolve()]
    for command in (by_dir, by_path):
        check_mine(compose_config(CONFIG_DIR, "config", command.overrides, command.search_path))


@pytest.mark.parametrize(
    "args",
    [
        ["--config-dir", "{dir}", "experiment=mine"],
        ["--config-dir={dir}", "experiment=mine"],
        ["-cd", "{dir}", "model/generator=mine", "data=mine"],
        ["hydra.searchpath=[file://{dir}]", "experiment=mine"],
        ["hydra.searchpath=['file://{dir}']", "experiment=mine", "logger=none"],
    ],
)
def test_config_checks_accept_the_users_options(user_dir, args):
    check_composition("config", [a.format(dir=user_dir) for a in args])


def test_config_checks_still_refuse_mistakes_with_a_user_folder(user_dir):
    with pytest.raises(ConfigError, match="model.generator.hidden_size"):
        check_composition(
            "config",
            ["--config-dir", str(user_dir), "experiment=mine", "model.generator.hidden_size=3"],
        )
    with pytest.raises(ConfigError, match=r"experiment/theirs.*Available options.*searched"):
        check_composition("config", ["--config-dir", str(user_dir), "experiment=theirs"])
    # Without the folder, the user's option is unknown, and the message says where to add it.
    with pytest.raises(ConfigError, match=r"experiment/mine.*--config-dir=<dir>"):
        check_composition("config", ["experiment=mine"])
    missing = user_dir.parent / "nowhere"
    with pytest.raises(ConfigError, match=r"--config-dir=.*nowhere is not a folder"):
        check_composition("config", ["--config-dir", str(missing), "experiment=mine"])
    with pytest.raises(ConfigError, match=r"file://.*nowhere is not a folder"):
        check_composition("config", [f"hydra.searchpath=[file://{missing}]"])


def test_group_null_also_switches_off_a_users_group(user_dir):
    (user_dir / "augment").mkdir()
    (user_dir / "augment" / "none.yaml").write_text("{}\n")
    args = ["--config-dir", str(user_dir), "augment=null", "logger=null"]
    assert null_group_overrides(args)[-2:] == ["augment=none", "logger=none"]
    assert null_group_overrides(["augment=null"]) == ["augment=null"]  # not a group without it


def test_other_apps_compose_with_the_users_folder(user_dir):
    """gan-evaluate's data=<option> and gan-generate's checks see the folder too."""
    check_composition("evaluate", ["--config-dir", str(user_dir), "ckpt=x.ckpt", "data=mine"])
    with pytest.raises(ConfigError, match="data/mine"):
        check_composition("evaluate", ["ckpt=x.ckpt", "data=mine"])
    check_composition("generate", ["--config-dir", str(user_dir), "ckpt=x.ckpt", "n=4"])


# --------------------------------------------------------------------------- resume=auto
def fake_run(runs: Path, name: str, overrides: list[str]) -> Path:
    run = runs / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    return run


def test_resume_auto_finds_a_run_of_the_users_experiment(user_dir, tmp_path):
    logs = tmp_path / "logs"
    same = ["experiment=mine", f"paths.log_dir={logs}"]
    fake_run(logs / "mine" / "runs", "2026-01-01_00-00-00", [*same, "seed=1"])
    wanted = fake_run(logs / "mine" / "runs", "2026-01-01_00-00-01", same)
    for folder in (["--config-dir", str(user_dir)], [f"hydra.searchpath=[file://{user_dir}]"]):
        argv = [*folder, *same, "resume=auto"]
        out = resume_argv(argv, CONFIG_DIR)
        assert out[: len(argv)] == argv and out[-1] == f"hydra.run.dir='{wanted}'"
    # Not a multirun, and the folder's path is never read as an override.
    with pytest.raises(ConfigError, match="multirun"):
        resume_argv(["-m", "--config-dir", str(user_dir), *same, "resume=auto"], CONFIG_DIR)


# --------------------------------------------------------------------------- DDP relaunch
def test_ddp_relaunch_of_a_multirun_job_keeps_the_users_folder(user_dir, tmp_path):
    """Ranks > 0 of a multirun job restart train.py with --config-dir and compose the job."""
    cfg = compose_config(
        CONFIG_DIR,
        "config",
        ["experiment=mine", "seed=2"],
        [f"file://{user_dir}"],
        return_hydra_config=True,
    )
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.runtime.output_dir = str(tmp_path / "job")
        cfg.hydra.runtime.cwd = str(tmp_path)
        cfg.hydra.overrides.task = ["experiment=mine", "seed=2"]
        cfg.hydra.overrides.hydra = ["hydra.mode=MULTIRUN"]
        # What Hydra records for `--config-dir <user_dir>` (compose cannot say "command-line").
        cfg.hydra.runtime.config_sources.append(
            ConfigSourceInfo(path=str(user_dir), schema="file", provider="command-line")
        )
    HydraConfig.instance().set_config(cfg)
    try:
        command, _ = job_command(1)
    finally:
        forget_hydra_run()
    assert f"--config-dir={user_dir}" in command
    check_composition("config", command[2:])  # the rank's command composes the same job
    rank_args = parse_command_line(command[2:])
    check_mine(
        compose_config(
            CONFIG_DIR,
            "config",
            [o for o in rank_args.overrides if not o.startswith("hydra.")],
            rank_args.search_path,
        )
    )


# --------------------------------------------------------------------------- end to end
#: A 3-batch CPU run, quiet, without the extra pictures.
SHORT = [
    *SMOKE,
    "num_threads=1",
    "callbacks.interpolation=null",
    "callbacks.sample_gif=null",
    "callbacks.curves=null",
]


def train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    return result


@pytest.mark.slow
def test_train_resume_generate_with_a_user_folder(user_dir, tmp_path, mnist_dir):
    """``train.py --config-dir <dir> experiment=mine`` trains a few batches; ``resume=auto``
    with the same folder continues that run; ``gan-generate`` with the folder samples it."""
    from gan_lightning.evaluate import main as evaluate
    from gan_lightning.generate import main as generate

    base = [
        "--config-dir",
        str(user_dir),
        "experiment=mine",
        f"paths.data_dir={mnist_dir}",
        f"paths.log_dir={tmp_path / 'logs'}",
        *SHORT,
    ]
    train(base, cwd=tmp_path)
    runs = list((tmp_path / "logs" / "mine" / "runs").iterdir())
    assert len(runs) == 1
    last = runs[0] / "checkpoints" / "last.ckpt"
    first = torch.load(last, weights_only=True)
    assert first["gan_lightning"]["batches_seen"] == 3
    assert first["gan_lightning"]["config"]["data"]["digits"] == [3]
    assert first["gan_lightning"]["config"]["model"]["generator"]["hidden_sizes"] == [24]

    # The same experiment again with resume=auto: found through the same folder, continued in
    # its own directory (its budget is spent, so nothing is trained twice).
    resumed = train([*base, "resume=auto"], cwd=tmp_path)
    log = resumed.stdout + resumed.stderr
    assert f"resume=auto: continuing the run in {runs[0]}" in log
    assert f"Resuming from {last}: batch 3" in log
    assert list((tmp_path / "logs" / "mine" / "runs").iterdir()) == runs

    out = tmp_path / "grid.png"
    assert generate(["--config-dir", str(user_dir), f"ckpt={last}", f"out={out}", "n=4"]) == 0
    assert out.is_file()

    # gan-evaluate scores it against a data option of the folder (an untrained classifier).
    classifier = random_classifier_file(tmp_path / "classifier.pt")
    scores = tmp_path / "scores.json"
    args = [f"ckpt={last}", "data=mine", f"data_dir={mnist_dir}", f"output={scores}"]
    args += metrics_overrides(classifier, num_samples=100)
    assert evaluate(args) == 2  # data=mine is not an option without the folder
    assert evaluate(["--config-dir", str(user_dir), *args]) == 0
    [row] = json.loads(scores.read_text())["results"]
    assert row["checkpoint"] == "last.ckpt" and row["fid_digits"] > 0


@pytest.mark.slow
def test_a_sweep_of_the_users_experiment_ends_with_its_report(user_dir, tmp_path, mnist_dir):
    """``train.py -m --config-dir <dir> experiment=mine_sweep``: two jobs and the sweep report;
    ``gan-report <sweep dir>`` rebuilds it."""
    from gan_lightning.report import main as report

    train(
        [
            "-m",
            "--config-dir",
            str(user_dir),
            "experiment=mine_sweep",
            f"paths.data_dir={mnist_dir}",
            f"paths.log_dir={tmp_path / 'logs'}",
            *SHORT,
        ],
        cwd=tmp_path,
    )
    (sweep,) = (tmp_path / "logs" / "mine" / "multiruns").iterdir()
    table = (sweep / "summary.md").read_text()
    assert "| 0 | [16] | 3 |" in table and "| 1 | [32] | 3 |" in table
    (sweep / "summary.md").unlink()
    assert report([str(sweep)]) == 0
    assert (sweep / "summary.md").read_text() == table
