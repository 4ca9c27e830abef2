"""Figure 1 for the 1-D toy: measured curves, the rendered figure, PNG frames and the GIF."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence
from torch import nn

from gan_lightning.callbacks.density import DensityPlot
from gan_lightning.data.gaussian import GaussianDataModule
from gan_lightning.errors import ConfigError
from tests.conftest import SMOKE, compose_config


class Flat(nn.Module):
    """A discriminator at the equilibrium: logit 0, D(x) = 1/2 everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0])


class PerfectGenerator:
    """The sampling contract of GenerativeModule, with G(z) = mu + sigma z exactly."""

    latent_dim = 1
    device = torch.device("cpu")
    pixel_range = (-1.0, 1.0)
    batches_seen = 0

    def __init__(self, mu: float, sigma: float, shape: tuple[int, ...] = (1,)) -> None:
        self.mu, self.sigma, self.shape = mu, sigma, shape
        self.discriminator = Flat()

    def sample_latent(self, n, generator=None, device=None):
        return torch.randn(n, 1, generator=generator)

    def generate(self, z):
        x = (self.mu + self.sigma * z).view(z.shape[0], *([1] * len(self.shape)))
        return x.expand(z.shape[0], *self.shape)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_measure_recovers_the_densities_and_d():
    data = GaussianDataModule(mu=3.0, sigma=0.5)
    callback = DensityPlot(num_samples=40000, bins=40)
    m = callback.measure(PerfectGenerator(3.0, 0.5), data)
    low, high = callback.x_range
    assert low < 3.0 - 3 * 0.5 and high > 3.0 + 3 * 0.5  # the data's support is on the axis
    centres = 0.5 * (m["gen_edges"][1:] + m["gen_edges"][:-1])
    expected = data.density(torch.from_numpy(centres)).numpy()
    assert np.abs(m["gen_density"] - expected).max() < 0.08  # histogram of G(z) = pdf
    assert m["fake_mean"] == pytest.approx(3.0, abs=0.02)
    assert m["fake_std"] == pytest.approx(0.5, abs=0.02)
    assert np.allclose(m["d_of_x"], 0.5) and m["d_on_data"] == pytest.approx(0.5)
    assert m["data_density"].max() == pytest.approx(expected.max(), rel=0.02)


def test_render_draws_the_three_curves():
    callback = DensityPlot(num_samples=5000)
    image = callback.render(PerfectGenerator(-2.0, 0.5), GaussianDataModule(mu=-2.0), step=7)
    assert image.dim() == 3 and image.shape[0] == 3 and 0 <= image.min() and image.max() <= 1
    pixels = (image.permute(1, 2, 0).reshape(-1, 3) * 255).round()

    def present(hex_color: str) -> bool:
        rgb = torch.tensor([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=torch.float)
        return bool(((pixels - rgb).abs().max(dim=1).values < 8).sum() > 50)

    from gan_lightning.callbacks.density import D_COLOR, DATA_COLOR, GEN_COLOR

    assert present(DATA_COLOR) and present(GEN_COLOR) and present(D_COLOR)


def test_images_are_refused_with_a_clear_message():
    callback = DensityPlot()
    with pytest.raises(ConfigError, match=r"1-D data .*callbacks.density=null"):
        callback.measure(PerfectGenerator(0.0, 1.0, shape=(1, 28, 28)), None)
    # ... and before any training, from the DataModule's shape.
    mnist_like = type("DM", (), {"image_shape": (1, 28, 28)})()
    trainer = type("T", (), {"datamodule": mnist_like})()
    with pytest.raises(ConfigError, match=r"data.image_shape=\[1, 28, 28\]"):
        callback.setup(trainer, PerfectGenerator(0.0, 1.0), "fit")


@pytest.mark.parametrize("option", [{"pack": 2}, {"minibatch_std": 4}])
def test_a_discriminator_that_judges_groups_is_not_drawn(option):
    from gan_lightning.nets.mlp import MLPDiscriminator

    model = PerfectGenerator(0.0, 1.0)
    model.discriminator = MLPDiscriminator((1,), hidden_sizes=[4], **option)
    with pytest.raises(ConfigError, match="point by point"):
        DensityPlot(num_samples=100).measure(model, GaussianDataModule())


def test_training_writes_frames_and_a_gif(tmp_path):
    """10 real batches, a frame every 4: steps 0, 4, 8 and the final 10 -> 4 PNGs, 4 GIF frames."""
    from gan_lightning.train import build

    cfg = compose_config(
        [
            "experiment=seed001_gaussian",
            *[o for o in SMOKE if not o.startswith("trainer.max_")],
            "trainer.max_steps=10",
            "metrics=none",
            "callbacks.density.every_n_steps=4",
            "callbacks.density.num_samples=2000",
            "callbacks.density.frame_ms=80",
        ],
        output_dir=tmp_path,
    )
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule)
    density = tmp_path / "density"
    frames = sorted(p.name for p in density.glob("step_*.png"))
    assert frames == [f"step_{s:07d}.png" for s in (0, 4, 8, 10)]
    with Image.open(density / "training.gif") as gif:
        assert gif.is_animated and gif.n_frames == 4
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
        size = gif.size
    assert durations[:3] == [80, 80, 80] and durations[-1] == 1500  # the end is held
    with Image.open(density / frames[0]) as first:
        assert first.size == size
