"""The Python API (gan_lightning/api.py, docs/extending.md): objects fitted by a plain
``pl.Trainer``; a config composed from Python and run; a checkpoint loaded and sampled."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torchvision.utils import save_image

import gan_lightning
from gan_lightning.errors import ConfigError
from tests.conftest import SMOKE

TINY_NETS = ["model.generator.hidden_sizes=[16]", "model.discriminator.hidden_sizes=[16]"]
QUIET = ["callbacks.interpolation=null", "callbacks.sample_gif=null", "callbacks.curves=null"]


def test_import_is_cheap_and_the_api_is_lazy():
    code = (
        "import sys, gan_lightning as g; "
        "print(sorted(m for m in ('torch', 'pytorch_lightning', 'hydra') if m in sys.modules)); "
        "print(g.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", gan_lightning.__version__]

    from gan_lightning.api import compose, load_module, run, sample_grid
    from gan_lightning.data.mnist import MNISTDataModule
    from gan_lightning.modules.gan import GAN

    assert gan_lightning.GAN is GAN and gan_lightning.MNISTDataModule is MNISTDataModule
    assert (gan_lightning.compose, gan_lightning.run) == (compose, run)
    assert (gan_lightning.load_module, gan_lightning.sample_grid) == (load_module, sample_grid)
    assert set(gan_lightning.__all__) <= set(dir(gan_lightning))
    for name in gan_lightning.__all__:
        assert getattr(gan_lightning, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        gan_lightning.nothing  # noqa: B018


@pytest.mark.slow  # real MNIST (a few seconds)
def test_objects_fit_with_a_plain_trainer(mnist_dir, one_thread):
    """Path 1: nets, a GAN and a DataModule built in Python, a plain pl.Trainer."""
    from gan_lightning import GAN, MLPDiscriminator, MLPGenerator, MNISTDataModule

    adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
    gan = GAN(
        generator=MLPGenerator(latent_dim=8, image_shape=(1, 28, 28), hidden_sizes=[16]),
        discriminator=MLPDiscriminator(image_shape=(1, 28, 28), hidden_sizes=[16]),
        optimizer_g=adam,
        optimizer_d=adam,
    )
    data = MNISTDataModule(data_dir=str(mnist_dir), batch_size=8, digits=[3])
    before = [p.detach().clone() for p in gan.parameters()]
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(gan, datamodule=data)
    assert gan.batches_seen == 3
    assert all(not torch.equal(a, b) for a, b in zip(before, gan.parameters(), strict=True))
    images = gan.sample(4)
    assert images.shape == (4, 1, 28, 28) and images.min() >= -1 and images.max() <= 1


@pytest.mark.slow  # real MNIST (a few seconds)
def test_compose_run_load_and_sample(mnist_dir, tmp_path, one_thread):
    """Path 2 and 3: compose with overrides, run, load the checkpoint, sample a grid."""
    from gan_lightning import build, compose, load_module, run, sample_grid

    overrides = [*SMOKE, f"paths.data_dir={mnist_dir}", "data.batch_size=8", *TINY_NETS, *QUIET]
    default_dir = compose(overrides)
    assert str(default_dir.paths.output_dir).startswith(f"{default_dir.paths.log_dir}/train/runs/")
    assert "hydra" not in default_dir

    cfg = compose(overrides, output_dir=tmp_path / "run")
    datamodule, model, trainer = build(cfg)
    assert type(model).__name__ == "GAN" and trainer.max_steps == model.optimizer_steps_for(3)
    run(cfg)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    module, config = load_module(last)
    assert config["model"]["generator"]["hidden_sizes"] == [16] and not module.training
    grid = sample_grid(module, n=6, nrow=3, seed=1, padding=2)
    assert grid.shape == (3, 2 * 28 + 3 * 2, 3 * 28 + 4 * 2) and 0 <= grid.min() <= grid.max() <= 1
    assert torch.equal(grid, sample_grid(module, n=6, nrow=3, seed=1))  # a seed, the same images
    assert not torch.equal(grid, sample_grid(module, n=6, nrow=3, seed=2))
    save_image(grid, tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="n=0"):
        sample_grid(module, n=0)


def test_compose_names_a_missing_config_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"config_dir=.*nowhere is not a folder"):
        gan_lightning.compose(["experiment=mine"], config_dir=tmp_path / "nowhere")


def test_compose_clears_hydra_state_for_the_next_app(tmp_path):
    from hydra.core.global_hydra import GlobalHydra

    gan_lightning.compose(["seed=1"], output_dir=Path(tmp_path))
    assert not GlobalHydra.instance().is_initialized()
    assert gan_lightning.compose(["seed=2"], output_dir=tmp_path).seed == 2
