"""gan_lightning/utils/batches.py: the one place that knows what a batch looks like."""

from __future__ import annotations

import torch

from gan_lightning.utils.batches import images_of, labels_of


def test_a_pair_gives_images_and_labels():
    images, labels = torch.zeros(2, 1, 4, 4), torch.tensor([3, 7])
    for batch in ((images, labels), [images, labels]):
        assert images_of(batch) is images and labels_of(batch) is labels


def test_bare_images_have_no_labels():
    images = torch.zeros(2, 1, 4, 4)
    assert images_of(images) is images and labels_of(images) is None
    assert images_of((images,)) is images and labels_of((images,)) is None
