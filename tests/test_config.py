"""Config composition: every experiment composes and builds; impossible values fail early."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from gan_lightning.cli import user_error
from gan_lightning.errors import ConfigError
from gan_lightning.train import CONFIG_DIR, build
from tests.conftest import SMOKE, compose_config

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def test_experiment_files_exist():
    for name in ("seed000_mlp_gan", "seed003_mlp_gan", "seed004_mlp_gan"):
        assert name in EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_builds(experiment, tmp_path):
    cfg = compose_config([f"experiment={experiment}", *SMOKE], tmp_path)
    assert cfg.task_name != "train", "an experiment should name its runs"
    model = instantiate(cfg.model)
    instantiate(cfg.data)
    assert tuple(model.pixel_range) == tuple(float(v) for v in cfg.data.pixel_range)


def test_default_config_is_the_mlp_gan_on_mnist(tmp_path):
    cfg = compose_config([], tmp_path)
    assert cfg.model._target_ == "gan_lightning.modules.gan.GAN"
    assert cfg.model.generator._target_ == "gan_lightning.nets.mlp.MLPGenerator"
    assert cfg.data._target_ == "gan_lightning.data.mnist.MNISTDataModule"
    assert list(cfg.model.generator.image_shape) == [1, 28, 28]  # flows from data


def test_seed_values(tmp_path):
    cfg = compose_config(["experiment=seed003_mlp_gan"], tmp_path)
    assert list(cfg.model.real_label_range) == [0.7, 1.0]
    assert list(cfg.model.fake_label_range) == [0.0, 0.3]
    assert cfg.data.batch_size == 32 and cfg.trainer.max_epochs == 200
    cfg = compose_config(["experiment=seed004_mlp_gan"], tmp_path)
    assert cfg.model.latent_dim == 64 and cfg.model.optimizer_g.lr == 0.0005
    assert cfg.trainer.max_epochs == 300
    cfg = compose_config(["experiment=seed000_mlp_gan"], tmp_path)
    assert list(cfg.data.pixel_range) == [-0.5, 0.5] and cfg.model.optimizer_d.lr == 0.001


def test_max_steps_is_translated_into_optimizer_steps(tmp_path):
    cfg = compose_config([*SMOKE, "trainer.max_steps=30", "model.d_steps=3"], tmp_path)
    _, model, trainer = build(cfg)
    assert trainer.max_steps == 40  # 30 D steps + 10 G steps
    cfg = compose_config([*SMOKE, "trainer.max_steps=30"], tmp_path)
    _, model, trainer = build(cfg)
    assert trainer.max_steps == 60


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.d_steps=0", "model.d_steps"),
        ("model.g_steps=0", "model.g_steps"),
        ("model.optimizer_d.lr=0", "model.optimizer_d.lr"),
        ("model.optimizer_g.lr=-1e-3", "model.optimizer_g.lr"),
        ("data.digits=[11]", "data.digits"),
        ("data.pixel_range=[0,2]", "pixel_range"),
        ("model.objective=hinge", "model.objective"),
        ("model.real_label_range=[0.7,1.3]", "model.real_label_range"),
        ("data.batch_size=0", "data.batch_size"),
        ("trainer.max_steps=0", "trainer.max_steps"),
    ],
)
def test_impossible_values_fail_before_training(override, needle, tmp_path):
    cfg = compose_config([*SMOKE, override], tmp_path)
    with pytest.raises(Exception) as err:
        build(cfg)
    user = user_error(err.value)
    assert isinstance(user, ConfigError), err.value
    assert needle in str(user)


def test_both_ratios_above_one(tmp_path):
    cfg = compose_config([*SMOKE, "model.d_steps=2", "model.g_steps=3"], tmp_path)
    with pytest.raises(Exception) as err:
        build(cfg)
    assert "only one of them" in str(user_error(err.value))


def test_generator_cannot_produce_pixel_range(tmp_path):
    cfg = compose_config([*SMOKE, "model.generator.output_activation=sigmoid"], tmp_path)
    with pytest.raises(Exception) as err:
        build(cfg)
    message = str(user_error(err.value))
    assert "sigmoid" in message and "[-1.0, 1.0]" in message


def test_unknown_group_option_lists_choices(tmp_path):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(["model=transformer"], tmp_path)
    assert "gan" in str(err.value)  # Hydra's own message lists the available options


def test_seed003_sweep_moves_both_learning_rates_together(tmp_path):
    from hydra import compose, initialize_config_dir

    cfg = compose_config(["experiment=seed003_mlp_gan_sweep", "lr=0.001"], tmp_path)
    assert cfg.model.optimizer_g.lr == cfg.model.optimizer_d.lr == 0.001
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        full = compose("config", ["experiment=seed003_mlp_gan_sweep"], return_hydra_config=True)
    params = full.hydra.sweeper.params
    assert set(params) == {"lr", "model.latent_dim", "model.g_steps"}
    assert params["lr"] == "0.0001,0.0002,0.0005,0.001"
