"""The image helper: what each logger receives (W&B: uint8, not black) and the files written."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image
from pytorch_lightning.loggers import WandbLogger

from gan_lightning.utils.images import log_animation, log_image, logging_step, to_uint8_hwc


class FakeWandbLogger(WandbLogger):
    """Records what ``log_image``/``log_metrics`` receive; a ``WandbLogger`` to the helper,
    which dispatches on the logger's class, but one that never starts a W&B run."""

    def __init__(self) -> None:  # noqa: D107 - no super().__init__: nothing of W&B is needed
        self.images: list = []
        self.metrics: list = []

    def log_image(self, key, images, step=None, **kwargs):
        self.images.append((key, images, step, kwargs))

    def log_metrics(self, metrics, step=None):
        self.metrics.append((metrics, step))


class BrokenLogger(FakeWandbLogger):
    def log_image(self, *args, **kwargs):
        raise RuntimeError("network down")


def trainer_with(*loggers, batches=7):
    """A GAN's trainer after ``batches`` real batches: two optimizer steps per batch."""
    return SimpleNamespace(
        loggers=list(loggers),
        global_step=2 * batches,
        lightning_module=SimpleNamespace(batches_seen=batches),
    )


def test_wandb_gets_uint8_pixels_at_the_scalar_step(tmp_path: Path):
    wandb = FakeWandbLogger()
    image = torch.linspace(0, 1, 12).view(1, 3, 4)  # grey, [0, 1]
    saved = log_image(trainer_with(wandb), "samples/x", image, tmp_path / "x.png", caption="e0")
    [(key, [array], step, kwargs)] = wandb.images
    assert key == "samples/x" and step == 7  # batches, not 2 optimizer steps per batch
    assert array.dtype == np.uint8 and array.shape == (3, 4)
    assert array.max() == 255 and array.min() == 0
    assert kwargs == {"caption": ["e0"]}
    assert np.array_equal(np.asarray(Image.open(saved).convert("L")), array)


def test_no_caption_no_caption_list_and_rgb_stays_rgb():
    wandb = FakeWandbLogger()
    log_image(trainer_with(wandb), "k", torch.rand(3, 5, 6))
    [(_, [array], _, kwargs)] = wandb.images
    assert kwargs == {} and array.shape == (5, 6, 3)


def test_a_failing_logger_does_not_stop_training(tmp_path: Path, caplog):
    saved = log_image(trainer_with(BrokenLogger()), "k", torch.rand(1, 4, 4), tmp_path / "k.png")
    assert saved.is_file() and "network down" in caplog.text


def test_without_trainer_only_the_file(tmp_path: Path):
    saved = log_image(None, "k", torch.rand(4, 4), tmp_path / "a" / "k.png")
    assert Image.open(saved).size == (4, 4)
    assert logging_step(None) == 0


def test_uint8_conversion_rounds_and_clamps():
    array = to_uint8_hwc(torch.tensor([[[-0.5, 0.5, 1.5]]]))
    assert array.tolist() == [[0, 128, 255]]


def test_animation_is_a_looping_gif_sent_to_wandb(tmp_path: Path):
    wandb = FakeWandbLogger()
    frames = [Image.new("RGB", (10, 8), (i * 60, 0, 0)) for i in range(3)]
    path = log_animation(
        trainer_with(wandb),
        "samples/all",
        frames,
        tmp_path / "a.gif",
        frame_ms=100,
        last_frame_ms=900,
    )
    gif = Image.open(path)
    assert gif.n_frames == 3 and gif.size == (10, 8) and gif.info["loop"] == 0
    gif.seek(2)
    assert gif.info["duration"] == 900
    [(metrics, step)] = wandb.metrics
    assert step == 7 and type(metrics["samples/all"]).__name__ == "Video"


def test_figures_become_image_tensors():
    from matplotlib.figure import Figure

    from gan_lightning.utils.images import figure_to_tensor

    fig = Figure(figsize=(2, 1), dpi=50, facecolor="white")
    image = figure_to_tensor(fig)
    assert image.shape == (3, 50, 100) and image.min() == 1.0  # an empty white figure
