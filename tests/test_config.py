"""Config composition: every experiment composes and builds; groups switch what they name;
impossible values fail early."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.cli import user_error
from gan_lightning.train import CONFIG_DIR, build
from tests.conftest import REPO, SMOKE, compose_config
from tests.test_user_configs import documented_configs

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def test_experiments_the_docs_name_exist_and_all_are_listed():
    """Every `experiment=NAME` in the docs and configs is a file (of the package, or of an
    example's own config folder, examples/*/configs), and docs/experiments.md lists every
    package one."""
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    texts = [p.read_text() for p in docs + sorted(Path(CONFIG_DIR).rglob("*.yaml"))]
    named = {m for text in texts for m in re.findall(r"experiment=(\w+)", text)}
    # docs/extending.md runs experiments of a user's config folder (tests/test_user_configs.py)
    # and examples/ ship folders of their own.
    users = {Path(p).stem for p in documented_configs() if p.startswith("experiment/")}
    users |= {p.stem for p in (REPO / "examples").glob("**/experiment/*.yaml")}
    unknown = named - set(EXPERIMENTS) - users
    assert named and not unknown, sorted(unknown)
    listed = (REPO / "docs" / "experiments.md").read_text()
    table = set(re.findall(r"`((?:seed\d{3}|mnist)_\w+)`", listed))
    assert not set(EXPERIMENTS) - table, sorted(set(EXPERIMENTS) - table)


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


def test_experiments_build_what_their_reports_train(tmp_path):
    """The built objects, not the YAML: each report's settings reach the nets, optimizers and
    data that train (an override lost in a defaults list would show here)."""

    def built(experiment: str):
        cfg = compose_config([f"experiment={experiment}"], tmp_path)
        return instantiate(cfg.model), instantiate(cfg.data)

    model, data = built("seed004_mlp_gan")
    assert model.sample_latent(3).shape == (3, 64)  # N(0, I) of dimension 64
    opt_g, opt_d = model.configure_optimizers()
    assert opt_g.param_groups[0]["lr"] == opt_d.param_groups[0]["lr"] == 5e-4
    model, data = built("seed003_mlp_gan")
    assert data.batch_size == 32
    assert any(isinstance(m, torch.nn.Dropout) for m in model.discriminator.modules())
    model, data = built("seed000_mlp_gan")
    assert tuple(data.pixel_range) == tuple(model.pixel_range) == (-0.5, 0.5)
    assert model.configure_optimizers()[1].param_groups[0]["lr"] == 1e-3


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
        ("model.objective=wasserstein", "model.objective"),
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


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (
            ["model/optimizer@model.optimizer_d=sgd", "model.optimizer_d.momentum=0.9"],
            "optimizer_d",
        ),
        (
            [
                "model=dcgan",
                "model/optimizer@model.optimizer_g=sgd",
                "model.optimizer_g.momentum=0.9",
            ],
            "optimizer_g",
        ),
        (["model=vae", "model/optimizer=sgd", "model.optimizer.momentum=0.9"], "optimizer"),
    ],
)
def test_optimizer_class_is_a_group_choice(overrides, key, tmp_path):
    """README's way to switch an optimizer: nothing of Adam's is left, the other net keeps it."""
    cfg = compose_config(overrides, tmp_path)
    assert "betas" not in cfg.model[key]
    model = instantiate(cfg.model)
    optimizers = model.configure_optimizers()
    if key == "optimizer":  # the VAE: one optimizer over encoder + decoder
        by_key = {key: optimizers}
    else:  # the GAN: [opt_g, opt_d]
        by_key = dict(zip(("optimizer_g", "optimizer_d"), optimizers, strict=True))
    sgd = by_key.pop(key)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    for other in by_key.values():  # the GAN's other net: Radford et al.'s Adam, untouched
        assert isinstance(other, torch.optim.Adam) and other.defaults["betas"] == (0.5, 0.999)


def test_nets_are_group_choices(tmp_path):
    cfg = compose_config(["model=dcgan", "model/discriminator=mlp"], tmp_path)
    assert cfg.model.generator._target_.endswith("DCGANGenerator")
    assert cfg.model.discriminator._target_.endswith("MLPDiscriminator")
    assert "init" not in cfg.model.discriminator  # the DCGAN net's keys go with it
    cfg = compose_config(["model=vae", "model/encoder=conv"], tmp_path)
    assert cfg.model.encoder._target_.endswith("ConvEncoder")
    assert cfg.model.decoder._target_.endswith("MLPDecoder") and cfg.model.latent_dim == 2


def test_sweep_params_name_keys_of_the_config():
    """A sweeper param (or the sweep subdir) naming a key the config lacks would add a stray key
    to every job instead of varying the intended one."""
    checked = set()
    for experiment in EXPERIMENTS:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("config", [f"experiment={experiment}"], return_hydra_config=True)
        subdir = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"]
        keys = [*(cfg.hydra.sweeper.get("params") or {})]
        keys += re.findall(r"\$\{((?!hydra[.:])[\w.]+)\}", subdir)
        missing = [k for k in keys if OmegaConf.select(cfg, k, default=KeyError) is KeyError]
        assert not missing, f"{experiment}: {missing}"
        checked |= {experiment} if keys else set()
    assert {"seed001_gaussian_sweep", "seed003_bn_ablation", "seed003_mlp_gan_sweep"} <= checked


def test_unknown_group_option_lists_choices(tmp_path):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(["model=transformer"], tmp_path)
    assert "gan" in str(err.value)  # Hydra's own message lists the available options


def test_seed003_sweep_moves_both_learning_rates_together(tmp_path):
    cfg = compose_config(["experiment=seed003_mlp_gan_sweep", "lr=0.001"], tmp_path)
    assert cfg.model.optimizer_g.lr == cfg.model.optimizer_d.lr == 0.001
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        full = compose("config", ["experiment=seed003_mlp_gan_sweep"], return_hydra_config=True)
    params = full.hydra.sweeper.params
    assert set(params) == {"lr", "model.latent_dim", "model.g_steps"}
    assert params["lr"] == "0.0001,0.0002,0.0005,0.001"
