"""Synthetic shapes, drawn from a seed: squares, discs and crosses on a black background.

The data need no download and are the same on every machine (a seeded torch generator), so
the example trains, resumes and scores anywhere. The DataModule reuses gan-lightning's
:class:`~gan_lightning.data.base.BaseDataModule` (batching, a resumable sampler, seeded splits,
uint8 -> pixel range on the device); all it adds is ``image_shape`` and ``build_splits``.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from gan_lightning.data.base import BaseDataModule
from gan_lightning.data.tensors import TensorImageDataset
from gan_lightning.errors import ConfigError

#: Label k draws SHAPES[k].
SHAPES = ("square", "disc", "cross")


def render_shapes(n: int, size: int = 28, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` white shapes on black, uint8 (n, 1, size, size), and their kinds (n,) as labels.

    Each image holds one shape of a random kind, centre and radius (size/7 to size/3)."""
    generator = torch.Generator().manual_seed(int(seed))
    kinds = torch.randint(0, len(SHAPES), (n,), generator=generator)
    radius = size / 7 + torch.rand(n, generator=generator) * (size / 3 - size / 7)
    centre = radius[:, None] + torch.rand(n, 2, generator=generator) * (size - 2 * radius[:, None])
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    dy = (grid[None, :, None] - centre[:, 0, None, None]).abs()  # (n, size, 1)
    dx = (grid[None, None, :] - centre[:, 1, None, None]).abs()  # (n, 1, size)
    r = radius[:, None, None]
    square = (dx <= r) & (dy <= r)
    disc = dx**2 + dy**2 <= r**2
    cross = ((dx <= r) & (dy <= r / 3)) | ((dy <= r) & (dx <= r / 3))
    masks = torch.stack([square, disc, cross], dim=1)  # (n, 3, size, size)
    images = masks[torch.arange(n), kinds]  # (n, size, size)
    return (images.to(torch.uint8) * 255).unsqueeze(1), kinds


class ShapesDataModule(BaseDataModule):
    """``num_samples`` training shapes and ``val_size`` held-out ones (the test split is the
    validation split), 1 x ``image_size`` x ``image_size``, labelled by kind (3 classes)."""

    num_classes = len(SHAPES)

    def __init__(
        self, num_samples: int = 6000, image_size: int = 28, val_size: int = 500, **kwargs
    ) -> None:
        super().__init__(val_size=val_size, **kwargs)
        if int(num_samples) < 1 or int(image_size) < 8:
            raise ConfigError(
                f"data: num_samples={num_samples} must be >= 1 and image_size={image_size} >= 8."
            )
        self.num_samples = int(num_samples)
        self.image_size = int(image_size)
        self.check_image_shape()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    def prepare_data(self) -> None:
        """Nothing to download: the shapes are drawn in :meth:`build_splits`."""

    def build_splits(self) -> tuple[Dataset, Dataset, Dataset]:
        images, labels = render_shapes(self.num_samples, self.image_size, self.seed)
        train, val = self.split_train_val(images, labels)
        val = val if val is not None else TensorImageDataset(images[:0], labels[:0])
        return train, val, val
