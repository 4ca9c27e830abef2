"""The streaming base of the file-based sets (CelebA, any image folder)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from gan_lightning.data.base import BaseDataModule
from gan_lightning.data.decoding import ImageFileDataset
from gan_lightning.data.sources.files import check_images, check_verify_options
from gan_lightning.errors import ConfigError


class ImageFilesDataModule(BaseDataModule):
    """Streaming base of the file-based sets (CelebA, any image folder).

    One preprocessing path for all of them (:func:`load_image`: center crop ``crop_size``,
    resize to ``image_size``, uint8), one up-front check of the files
    (:func:`gan_lightning.data.sources.files.check_images` with ``verify`` and
    ``max_corrupt_fraction``), and DataLoader workers (``in_memory = False``). Subclasses
    list their files and targets in :meth:`build_splits` and hand them to :meth:`dataset`.
    """

    in_memory = False

    def __init__(
        self,
        image_size: int = 64,
        crop_size: int | None = None,
        channels: int = 3,
        verify: str = "header",
        max_corrupt_fraction: float = 0.001,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(image_size, bool) or int(image_size) < 1:
            raise ConfigError(f"data.image_size must be a positive int; got {image_size}.")
        if crop_size is not None and int(crop_size) < 1:
            raise ConfigError(
                f"data.crop_size must be a positive int, or null for the largest centred "
                f"square; got {crop_size}."
            )
        if int(channels) not in (1, 3):
            raise ConfigError(f"data.channels must be 3 (RGB) or 1 (grayscale); got {channels}.")
        check_verify_options(verify, max_corrupt_fraction)
        self.image_size = int(image_size)
        self.crop_size = int(crop_size) if crop_size is not None else None
        self.channels = int(channels)
        self.verify = verify
        self.max_corrupt_fraction = float(max_corrupt_fraction)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def readable(
        self, files: Sequence[str | os.PathLike], targets: torch.Tensor, what: str
    ) -> tuple[list[str], torch.Tensor]:
        """Drop unreadable files (warning naming them), or raise above the allowed fraction."""
        keep = check_images(files, self.verify, self.max_corrupt_fraction, what)
        if len(keep) == len(files):
            return [str(f) for f in files], targets
        return [str(files[i]) for i in keep], targets[torch.as_tensor(keep, dtype=torch.long)]

    def dataset(self, files: Sequence[str], targets: torch.Tensor | None) -> ImageFileDataset:
        return ImageFileDataset(files, targets, self.image_size, self.crop_size, self.channels)
