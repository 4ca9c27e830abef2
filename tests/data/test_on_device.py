"""MNIST served from the training GPU: the uint8 set moves there once, batches are gathered
there. Run on a CPU with a stand-in device (``meta``: tensors without storage)."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.data.mnist import MNISTDataModule
from gan_lightning.errors import ConfigError


def datamodule(mnist_dir, **kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=str(mnist_dir), batch_size=8, val_size=100, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_the_training_set_moves_to_the_device_once_and_batches_come_from_there(
    mnist_dir, monkeypatch
):
    dm = datamodule(mnist_dir, on_device=True, pin_memory=True)
    monkeypatch.setattr(dm, "training_device", lambda: torch.device("meta"))
    loader = dm.train_dataloader()
    assert dm.train_set.images.device.type == "meta" and dm.train_set.labels.device.type == "meta"
    assert not loader.pin_memory  # device tensors cannot be pinned
    images, labels = next(iter(loader))
    assert images.device.type == "meta" and images.shape == (8, 1, 28, 28)
    assert images.dtype == torch.uint8 and labels.shape == (8,)
    assert dm.val_set.images.device.type == "cpu"  # evaluation sets stay where they were


@pytest.mark.parametrize(
    "on_device, device, workers, expected",
    [
        ("auto", "cuda", 0, "cuda"),
        ("auto", "cpu", 0, None),
        ("auto", "mps", 0, None),  # auto: CUDA only
        (True, "mps", 0, "mps"),
        (False, "cuda", 0, None),
        ("auto", "cuda", 2, None),  # worker processes cannot hand out GPU tensors
    ],
)
def test_when_the_set_is_served_from_the_device(mnist_dir, on_device, device, workers, expected):
    dm = datamodule(mnist_dir, on_device=on_device, num_workers=workers)
    dm.training_device = lambda: torch.device(device)
    served = dm.serving_device()
    assert (served.type if served is not None else None) == expected


def test_outside_a_trainer_and_bad_values():
    assert MNISTDataModule(data_dir="unused").serving_device() is None
    with pytest.raises(ConfigError, match="data.on_device"):
        MNISTDataModule(data_dir="unused", on_device="gpu")
