"""The streaming base of the file-based sets (CelebA, any image folder), and their opt-in
decoded cache (``data.cache``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gan_lightning.data.base import BaseDataModule
from gan_lightning.data.cache import CachedImageDataset, DecodedCache
from gan_lightning.data.decoding import ImageFileDataset
from gan_lightning.data.sources.files import check_images, check_verify_options
from gan_lightning.errors import ConfigError

log = logging.getLogger(__name__)


class ImageFilesDataModule(BaseDataModule):
    """Streaming base of the file-based sets (CelebA, any image folder).

    One preprocessing path for all of them (:func:`load_image`: center crop ``crop_size``,
    resize to ``image_size``, uint8), one up-front check of the files
    (:func:`gan_lightning.data.sources.files.check_images` with ``verify`` and
    ``max_corrupt_fraction``), and DataLoader workers (``in_memory = False``). Subclasses
    list their files and targets in :meth:`build_splits` and hand them to :meth:`dataset`.

    ``cache: true`` decodes every file once into one uint8 array on disk
    (:mod:`gan_lightning.data.cache`) and serves batches from it like MNIST: no workers, no
    decoding per epoch. Rank 0 builds it in :meth:`prepare_data`; every rank then reads it.
    """

    in_memory = False

    def __init__(
        self,
        image_size: int = 64,
        crop_size: int | None = None,
        channels: int = 3,
        verify: str = "header",
        max_corrupt_fraction: float = 0.001,
        cache: bool = False,
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
        if not isinstance(cache, bool):
            raise ConfigError(f"data.cache must be true or false; got {cache!r}.")
        self.cache = cache
        #: The decoded cache's array and each cached file's row (``cache: true``, after setup).
        self.cached_images: np.ndarray | None = None
        self.cached_rows: dict[str, int] = {}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def readable(
        self,
        files: Sequence[str | os.PathLike],
        targets: torch.Tensor,
        what: str,
        cache_as: tuple[str, str | os.PathLike] | None = None,
    ) -> tuple[list[str], torch.Tensor]:
        """Drop unreadable files (warning naming them), or raise above the allowed fraction.

        With ``cache: true`` (``cache_as``: the set's name and root folder), the files are
        decoded into the cache instead (built, or rebuilt, when missing or stale), which skips
        unreadable ones under the same ``max_corrupt_fraction``, and :meth:`dataset` serves
        them from it."""
        if self.cache and cache_as is not None:
            name, root = cache_as
            cache = DecodedCache(
                self.data_dir, name, root, self.image_size, self.crop_size, self.channels
            )
            array, keep = cache.open([str(f) for f in files], self.max_corrupt_fraction, what)
            self.cached_images = array
            self.cached_rows = {str(files[i]): row for row, i in enumerate(keep)}
        else:
            keep = check_images(files, self.verify, self.max_corrupt_fraction, what)
        if len(keep) == len(files):
            return [str(f) for f in files], targets
        return [str(files[i]) for i in keep], targets[torch.as_tensor(keep, dtype=torch.long)]

    def dataset(
        self, files: Sequence[str], targets: torch.Tensor | None
    ) -> ImageFileDataset | CachedImageDataset:
        if self.cached_images is not None:
            rows = np.array([self.cached_rows[str(f)] for f in files], dtype=np.int64)
            if targets is None:
                targets = torch.zeros(len(files), dtype=torch.long)
            return CachedImageDataset(self.cached_images, rows, targets, files)
        return ImageFileDataset(files, targets, self.image_size, self.crop_size, self.channels)

    def prepare_cache(self) -> None:
        """Build (or check) the decoded cache on the process that prepares the data (rank 0 of
        each node, before the other ranks' :meth:`setup`, which then only read it)."""
        if self.cache:
            self.setup("fit")

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.cached_images is not None and not self.in_memory:
            # Served from the array like MNIST: batches are one gather, no worker processes.
            self.in_memory = True
            if self.num_workers:
                log.info(
                    "data.cache=true: batches are gathered from the decoded cache in the main "
                    "process (data.num_workers=%d not used).",
                    self.num_workers,
                )
            self.num_workers = 0
