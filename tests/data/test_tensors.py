"""gan_lightning/data/tensors.py: in-memory datasets served one batch per indexing op."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from gan_lightning.data.loaders import passthrough_collate
from gan_lightning.data.tensors import TensorImageDataset
from gan_lightning.errors import ConfigError


def test_a_batch_is_the_images_and_labels_at_the_sampled_indices():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    data = TensorImageDataset(images, torch.arange(10) % 3)
    assert len(data) == 10 and data[4][0].item() == 4 and data[4][1].item() == 1
    loader = DataLoader(data, batch_size=4, shuffle=False, collate_fn=passthrough_collate)
    batch_images, batch_labels = next(iter(loader))
    assert batch_images.shape == (4, 1, 1, 1) and batch_images.dtype == torch.uint8
    assert batch_images.flatten().tolist() == [0, 1, 2, 3]
    assert batch_labels.tolist() == [0, 1, 2, 0]


def test_images_and_labels_of_different_lengths_are_refused():
    with pytest.raises(ConfigError, match="same length"):
        TensorImageDataset(torch.zeros(3, 1, 2, 2), torch.zeros(2))
