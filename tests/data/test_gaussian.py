"""The 1-D Gaussian toy: samples, splits, and a short seed001 run that moves G onto the data."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.data.gaussian import GaussianDataModule
from gan_lightning.errors import ConfigError
from tests.conftest import SMOKE, compose_config


@pytest.mark.parametrize(("mu", "sigma"), [(3.0, 0.5), (-2.0, 0.5), (3.0, 0.2)])
def test_samples_have_the_target_mean_and_std(mu, sigma):
    dm = GaussianDataModule(mu=mu, sigma=sigma, num_samples=20000, batch_size=500)
    dm.setup("fit")
    batches = [dm.on_after_batch_transfer(b, 0)[0] for b in dm.train_dataloader()]
    x = torch.cat(batches)
    assert len(batches) == 40 and x.shape == (20000, 1) and x.dtype == torch.float32
    # standard error of the mean is sigma / sqrt(20000) < 0.004: 0.02 is a 5-sigma bound
    assert abs(x.mean().item() - mu) < 0.02
    assert abs(x.std().item() - sigma) < 0.02 * sigma / 0.5
    assert dm.image_shape == (1,)


def test_fresh_training_draws_fixed_validation_set():
    dm = GaussianDataModule(num_samples=240, batch_size=120, val_size=100, seed=3)
    dm.setup("fit")
    first = torch.cat([b[0] for b in dm.train_dataloader()])
    second = torch.cat([b[0] for b in dm.train_dataloader()])
    assert not torch.equal(first, second)  # Algorithm 1: a new minibatch every step
    again = GaussianDataModule(num_samples=240, batch_size=120, val_size=100, seed=3)
    again.setup("fit")
    assert torch.equal(again.val_set.images, dm.val_set.images) and len(dm.val_set) == 100
    # floats pass the base's uint8 conversion untouched
    batch = next(iter(dm.val_dataloader()))
    assert torch.equal(dm.on_after_batch_transfer(batch, 0)[0], batch[0])


def test_density_is_the_normal_pdf():
    dm = GaussianDataModule(mu=-2.0, sigma=0.5)
    x = torch.linspace(-6, 2, 8001, dtype=torch.float64)
    p = dm.density(x)
    assert p.max().item() == pytest.approx(1 / (0.5 * math.sqrt(2 * math.pi)))
    assert torch.trapezoid(p, x).item() == pytest.approx(1.0, abs=1e-6)
    assert x[p.argmax()].item() == pytest.approx(-2.0)


def test_bad_values():
    with pytest.raises(ConfigError, match="sigma"):
        GaussianDataModule(sigma=0)
    with pytest.raises(ConfigError, match="num_samples"):
        GaussianDataModule(num_samples=0)


def test_seed001_run_moves_the_generator_onto_the_target(tmp_path, one_thread):
    """400 real batches of experiment=seed001_gaussian (fig2c: N(-2, 0.5), U(-10, 10) noise):
    the generator's mean must close most of its distance to the data mean."""
    from gan_lightning.train import build

    cfg = compose_config(
        [
            "experiment=seed001_gaussian",
            "seed001_target=fig2c",
            *[o for o in SMOKE if not o.startswith("trainer.max_")],
            "trainer.max_steps=400",
            "metrics=none",
            "callbacks.density.every_n_steps=200",
        ],
        output_dir=tmp_path,
    )
    torch.manual_seed(0)
    datamodule, model, trainer = build(cfg)
    gen = torch.Generator().manual_seed(0)
    before = model.sample(4000, gen).mean().item()
    trainer.fit(model, datamodule=datamodule)
    after = model.sample(4000, torch.Generator().manual_seed(0)).mean().item()
    assert model.batches_seen == 400
    distance_before, distance_after = abs(before - (-2.0)), abs(after - (-2.0))
    assert distance_after < 0.5 * distance_before, (before, after)
    frames = sorted(p.name for p in (tmp_path / "density").glob("*.png"))
    assert frames == ["step_0000000.png", "step_0000200.png", "step_0000400.png"]
    assert (tmp_path / "density" / "training.gif").is_file()
