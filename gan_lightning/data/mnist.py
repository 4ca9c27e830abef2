"""MNIST as an in-memory uint8 tensor: the whole set is 47 MB, so no PIL, no workers."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from gan_lightning.data.base import BaseDataModule
from gan_lightning.data.sources.mnist import MNIST_SOURCES, ensure_mnist, read_mnist
from gan_lightning.data.tensors import TensorImageDataset
from gan_lightning.errors import ConfigError

log = logging.getLogger(__name__)


def check_digits(digits: Sequence[int] | None) -> tuple[int, ...] | None:
    if digits is None:
        return None
    if isinstance(digits, int):
        digits = [digits]
    values = list(digits)
    bad = [d for d in values if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 9]
    if bad or not values:
        raise ConfigError(
            f"data.digits={values} must be a non-empty list of digits 0-9 (e.g. data.digits=[2]), "
            "or null for all ten."
        )
    return tuple(sorted(set(values)))


class MNISTDataModule(BaseDataModule):
    """Real MNIST (60k train / 10k test), optionally restricted to some digits.

    ``val_size`` images are held out of the 60k training set for validation (0 = validate on
    the official test set). ``digits: [2]`` trains on one class, as seed 001 does. Labels are
    the digits, so conditional GANs train on it (10 classes, whatever the subset).
    """

    num_classes = 10

    def __init__(
        self,
        digits: Sequence[int] | None = None,
        sources: Sequence[str] = MNIST_SOURCES,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.digits = check_digits(digits)
        self.sources = tuple(sources)
        self.source_used: str | None = None
        self.check_image_shape()  # (1, 28, 28) is known before any file is read

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 28, 28)

    def prepare_data(self) -> None:
        self.source_used = ensure_mnist(self.data_dir, self.sources)

    def _subset(self, dataset: TensorImageDataset) -> TensorImageDataset:
        if self.digits is None:
            return dataset
        keep = self.subset_mask(
            torch.isin(dataset.labels, torch.tensor(self.digits)),
            f"data.digits={list(self.digits)}",
            "choose digits 0-9 present in MNIST.",
        )
        return TensorImageDataset(dataset.images[keep], dataset.labels[keep])

    def build_splits(self):
        if self.source_used is None:  # setup() without prepare_data(), e.g. a notebook
            self.prepare_data()
        # Split the full 60k first, then filter: the held-out images are the same for every
        # digit subset, and `digits: [2]` keeps ~11/12 of the 2s for training whatever val_size.
        train, val = self.split_train_val(*read_mnist(self.data_dir, train=True))
        test = self._subset(TensorImageDataset(*read_mnist(self.data_dir, train=False)))
        train = self._subset(train)
        val = self._subset(val) if val is not None else test
        log.info(
            "MNIST: %d train / %d val / %d test images%s",
            len(train),
            len(val),
            len(test),
            f" (digits {list(self.digits)})" if self.digits is not None else "",
        )
        return train, val, test
