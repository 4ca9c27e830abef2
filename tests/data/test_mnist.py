"""The MNIST DataModule on the real data (cached by the mnist_dir fixture)."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.data.mnist import MNISTDataModule
from gan_lightning.errors import ConfigError


@pytest.mark.parametrize("pixel_range", [[-1, 1], [-0.5, 0.5], [0, 1]])
def test_batches_in_pixel_range(mnist_dir, pixel_range):
    dm = MNISTDataModule(data_dir=str(mnist_dir), batch_size=32, pixel_range=pixel_range)
    dm.prepare_data()
    dm.setup("fit")
    images, labels = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert images.shape == (32, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (32,)
    assert images.min().item() == pytest.approx(pixel_range[0])
    assert images.max().item() == pytest.approx(pixel_range[1])


def test_splits_and_digit_subset(mnist_dir):
    dm = MNISTDataModule(data_dir=str(mnist_dir), val_size=1000, digits=[2, 7])
    dm.setup("fit")
    n_train, n_val = len(dm.train_set), len(dm.val_set)
    assert n_train + n_val == 5958 + 6265 and 100 < n_val < 300  # ~1000 * 12223 / 60000
    assert set(dm.train_set.labels.unique().tolist()) == {2, 7}
    assert set(dm.test_set.labels.unique().tolist()) == {2, 7}
    # The split is seeded: the same images every time.
    again = MNISTDataModule(data_dir=str(mnist_dir), val_size=1000, digits=[2, 7])
    again.setup("fit")
    assert torch.equal(again.val_set.images, dm.val_set.images)


def test_val_size_zero_validates_on_test(mnist_dir):
    dm = MNISTDataModule(data_dir=str(mnist_dir), val_size=0)
    dm.setup("fit")
    assert len(dm.train_set) == 60000 and dm.val_set is dm.test_set


@pytest.mark.parametrize("digits", [[10], [-1], [], ["3"]])
def test_bad_digits(digits):
    with pytest.raises(ConfigError, match="0-9"):
        MNISTDataModule(digits=digits)


def test_bad_pixel_range():
    with pytest.raises(ConfigError, match="pixel_range"):
        MNISTDataModule(pixel_range=[0, 255])
