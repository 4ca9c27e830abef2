"""A whole dataset held as two tensors (MNIST, the toy): a batch is one indexing op, no workers,
no per-sample Python."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from gan_lightning.errors import ConfigError


class TensorImageDataset(Dataset):
    """Images and labels held as whole tensors; a batch is one fancy-indexing op.

    ``__getitems__`` lets the DataLoader fetch a list of indices in one call (no per-sample
    Python or PIL work), while ``batch_size``/``shuffle`` stay ordinary DataLoader arguments so
    Lightning can still swap in a ``DistributedSampler`` under DDP.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ConfigError("images and labels must have the same length")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.images[index], self.labels[index]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> TensorImageDataset:
        """Move both tensors (once): batches are then gathered where they are used."""
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        return self
