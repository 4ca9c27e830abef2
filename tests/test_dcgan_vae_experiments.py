"""The DCGAN and VAE models and the experiments built on them: what their configs compose to,
smoke runs on real MNIST, the BatchNorm-ablation multirun, and the CelebA DCGAN's
build-then-missing-data behaviour."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from gan_lightning.errors import ConfigError, DataSourceError
from gan_lightning.modules.gan import GAN
from gan_lightning.modules.vae import VAE
from gan_lightning.nets.dcgan import DCGANGenerator
from gan_lightning.runtime.cli import user_error
from gan_lightning.train import build, run
from tests.conftest import REPO, SMOKE, compose_config

# Smoke overrides without FID/KID scoring (the metrics callback has its own tests).
QUIET = SMOKE + ([] if "metrics=none" in SMOKE else ["metrics=none"])

MNIST_EXPERIMENTS = [
    "seed001_dcgan_mnist",
    "seed002_dcgan",
    "seed002_mlp_gan",
    "seed002_vae",
    "seed003_dcgan_mnist",
    "seed003_bn_ablation",
    "mnist_best",
    "mnist_best_conditional",
]


# --------------------------------------------------------------------------- composition
def test_vae_models_switch_the_data_to_unit_pixels_and_gan_models_do_not():
    for model in ("vae", "conv_vae"):
        cfg = compose_config([f"model={model}"])
        assert list(cfg.data.pixel_range) == [0, 1] and list(cfg.model.pixel_range) == [0, 1]
    for model in ("gan", "dcgan"):
        assert list(compose_config([f"model={model}"]).data.pixel_range) == [-1, 1]


def test_vae_on_signed_pixels_is_a_config_error_before_training(tmp_path):
    cfg = compose_config(["model=vae", "data.pixel_range=[-1,1]", *QUIET], tmp_path)
    with pytest.raises(Exception) as err:
        build(cfg)
    user = user_error(err.value)
    assert isinstance(user, ConfigError) and "data.pixel_range=[0, 1]" in str(user)
    # the Gaussian likelihood accepts the range
    cfg = compose_config(
        ["model=vae", "data.pixel_range=[-1,1]", "model.reconstruction=gaussian", *QUIET], tmp_path
    )
    assert isinstance(build(cfg)[1], VAE)


def test_dcgan_shape_follows_data_and_bad_shapes_fail_in_build(tmp_path):
    _, model, _ = build(compose_config(["model=dcgan", *QUIET], tmp_path))
    assert isinstance(model, GAN) and isinstance(model.generator, DCGANGenerator)
    assert model.generator.image_shape == (1, 28, 28)
    # MNIST knows its shape: a wrong data.image_shape is refused before any net is built.
    cfg = compose_config(["model=dcgan", "data.image_shape=[1,30,30]", *QUIET], tmp_path)
    with pytest.raises(Exception) as err:
        build(cfg)
    assert "does not match the data's shape [1, 28, 28]" in str(user_error(err.value))
    # Data of a size DCGAN cannot build: the supported sizes, before the data are read.
    folder = ["data=image_folder", f"data.path={tmp_path}", "data.image_size=30"]
    cfg = compose_config(["model=dcgan", *folder, *QUIET], tmp_path)
    with pytest.raises(Exception) as err:
        build(cfg)
    user = user_error(err.value)
    assert isinstance(user, ConfigError) and "4 * 2^k" in str(user) and "28" in str(user)


def test_experiments_build_the_nets_their_reports_describe():
    """Through the built modules: what trains, not what the YAML says."""
    model = instantiate(compose_config(["experiment=seed003_dcgan_mnist"]).model)
    assert isinstance(model.generator, DCGANGenerator)
    assert model.schedule.updates(0) == (True, True) and model.schedule.updates(1) == (False, True)
    model = instantiate(compose_config(["experiment=seed002_mlp_gan"]).model)
    assert model.sample_latent(4).shape == (4, 2)  # a 2-D latent: the manifold grid applies
    assert isinstance(model.configure_optimizers()[1], torch.optim.SGD)
    model = instantiate(compose_config(["experiment=seed001_dcgan_mnist"]).model)
    assert float(model.sample_latent(256).abs().max()) <= 1.0  # z ~ U(-1, 1)


# --------------------------------------------------------------------------- smoke runs
@pytest.mark.slow
@pytest.mark.parametrize("experiment", MNIST_EXPERIMENTS)
def test_experiment_smoke_run_on_real_mnist(experiment, mnist_dir, tmp_path):
    overrides = [f"experiment={experiment}", *QUIET, f"paths.data_dir={mnist_dir}"]
    cfg = compose_config(overrides, tmp_path)
    metrics = run(cfg)
    assert list((tmp_path / "samples").glob("*.png")), "no sample grid written"
    assert any(key.startswith("train/") for key in metrics)
    if cfg.model.latent_dim == 2:  # seed 002's grid in latent space
        assert list((tmp_path / "latent_manifold").glob("*.png"))
    if experiment.startswith("mnist_best"):  # sampled through the EMA generator
        assert cfg.model.ema_decay and "generator_ema.n_averaged" in dict(
            torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        )
    if experiment == "seed002_vae":
        assert list((tmp_path / "reconstructions").glob("*.png"))
        for term in ("train/recon", "train/kl"):  # (validation does not run in 3 steps)
            assert any(key.startswith(term) for key in metrics), (term, sorted(metrics))


@pytest.mark.slow
def test_bn_ablation_multirun_writes_four_run_directories(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "experiment=seed003_bn_ablation",
        *QUIET,
        f"paths.data_dir={mnist_dir}",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert len(runs) == 4, runs
    combos = set()
    for run_dir in runs:
        cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        combos.add((cfg.model.generator.batch_norm, cfg.model.discriminator.batch_norm))
        assert list((run_dir / "samples").glob("*.png")), run_dir
    assert combos == {(True, True), (True, False), (False, True), (False, False)}


# --------------------------------------------------------------------------- CelebA
def _count(net: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


def _assert_64x64_dcgan(generator: nn.Module, discriminator: nn.Module) -> None:
    assert generator.image_shape == (3, 64, 64)
    assert _count(generator, nn.ConvTranspose2d) == 5  # 1 -> 4 -> 8 -> 16 -> 32 -> 64
    assert _count(discriminator, nn.Conv2d) == 5


@pytest.mark.parametrize(
    "overrides", [["experiment=seed003_dcgan_celeba"], ["model=dcgan", "data=celeba"]]
)
def test_celeba_dcgan_builds_64x64_and_fails_only_for_missing_data(overrides, tmp_path):
    empty = tmp_path / "no_data"
    empty.mkdir()
    cfg = compose_config([*overrides, *QUIET, f"paths.data_dir={empty}"], tmp_path / "run")
    model = instantiate(cfg.model)  # the shape flows from data.image_shape
    _assert_64x64_dcgan(model.generator, model.discriminator)
    if "experiment=seed003_dcgan_celeba" in overrides:
        assert cfg.data.batch_size == 32
    with pytest.raises(Exception) as err:
        run(cfg)
    user = user_error(err.value)
    assert isinstance(user, DataSourceError), err.value
    assert "celeba" in str(user).lower()


def test_conv_vae_builds_for_mnist_and_celeba_sizes(tmp_path):
    _, model, _ = build(compose_config(["model=conv_vae", *QUIET], tmp_path))
    assert model.image_shape == (1, 28, 28)
    cfg = compose_config(["model=conv_vae", "data=celeba", *QUIET], tmp_path)
    assert list(cfg.data.pixel_range) == [0, 1]
    assert instantiate(cfg.model).image_shape == (3, 64, 64)
