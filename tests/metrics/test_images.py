"""gan_lightning/metrics/images.py: the real and generated images that get scored, the same
in every evaluation and split exactly across ranks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.images import generated_batches, real_batches
from tests.helpers import tiny_gan


def datamodule(n: int = 30) -> SimpleNamespace:
    images = torch.arange(n).view(n, 1, 1, 1).float()
    return SimpleNamespace(val_set=list(zip(images, torch.zeros(n), strict=True)))


def values(batches) -> list[int]:
    return [int(v) for batch in batches for v in batch.flatten()]


def test_real_images_are_a_seeded_subset_and_the_ranks_share_it_exactly():
    one, total = real_batches(datamodule(), "val", 12, seed=3)
    chosen = values(one)
    assert total == 12 and len(set(chosen)) == 12 and chosen == sorted(chosen)
    assert values(real_batches(datamodule(), "val", 12, seed=3)[0]) == chosen
    assert values(real_batches(datamodule(), "val", 12, seed=4)[0]) != chosen
    shares = [values(real_batches(datamodule(), "val", 12, 3, rank, 3)[0]) for rank in range(3)]
    assert sum(shares, []) == chosen


def test_asking_for_more_than_the_split_scores_all_of_it():
    batches, total = real_batches(datamodule(10), "val", 1000, seed=0)
    assert total == 10 and values(batches) == list(range(10))


def test_a_split_the_data_does_not_have_is_named():
    with pytest.raises(ConfigError, match="no test set"):
        real_batches(datamodule(), "test", 5, seed=0)
    with pytest.raises(ConfigError, match="metrics.split='holdout' is not known"):
        real_batches(datamodule(), "holdout", 5, seed=0)


def test_generated_images_are_the_same_whatever_the_number_of_ranks():
    module = tiny_gan()
    whole = torch.cat([images for images, _ in generated_batches(module, 10, 7, batch_size=4)])
    parts = [
        images
        for rank in range(3)
        for images, _ in generated_batches(module, 10, 7, 4, rank=rank, world_size=3)
    ]
    assert whole.shape == (10, 1, 4, 4)
    torch.testing.assert_close(torch.cat(parts), whole)
