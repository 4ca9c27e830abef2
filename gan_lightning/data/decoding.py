"""Image files decoded per sample in DataLoader workers (CelebA, any folder), through one path
(decode -> center crop -> resize, uint8), with a readable neighbour standing in for a file that
fails mid-epoch."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from gan_lightning.errors import ConfigError, DataSourceError

log = logging.getLogger(__name__)


def load_image(
    path: str | os.PathLike, image_size: int, crop_size: int | None = None, channels: int = 3
) -> torch.Tensor:
    """Decode one image file to a uint8 (channels, image_size, image_size) tensor.

    The one preprocessing path of every file-based DataModule (DCGAN's CelebA recipe): decode
    (libjpeg-turbo/libpng/libwebp through torchvision, no PIL round trip), center crop a
    ``crop_size`` square (``None``: the largest centred square), antialiased resize to
    ``image_size``. An image smaller than ``crop_size`` is zero-padded by the crop.
    Raises ``RuntimeError``/``OSError`` for unreadable files; callers decide what that means.
    """
    from torchvision.io import ImageReadMode, decode_image, read_file
    from torchvision.transforms.v2 import functional as F

    # Decode as RGB always (webp has no grayscale decode), convert afterwards if asked.
    image = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)  # (3, H, W) uint8
    if channels == 1:
        image = F.rgb_to_grayscale(image)  # (1, H, W)
    side = min(image.shape[-2:]) if crop_size is None else int(crop_size)
    image = F.center_crop(image, [side, side])  # (C, side, side)
    if side != image_size:
        image = F.resize(image, [image_size, image_size], antialias=True)  # (C, S, S)
    return image.contiguous()


class ImageFileDataset(Dataset):
    """Image files decoded on demand (in DataLoader workers), with their targets.

    Files are checked before training (:func:`gan_lightning.data.sources.files.check_images`);
    a file that still fails here (truncated after a header-only check, a disk error) must not
    kill a worker in the middle of an epoch, so it is reported once per process, by name, and
    the next readable file stands in for it. More than ``max_substitutions`` unreadable files
    in a row means the data is broken, and that is raised as a :class:`DataSourceError`.
    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        targets: torch.Tensor | None = None,
        image_size: int = 64,
        crop_size: int | None = None,
        channels: int = 3,
        max_substitutions: int = 16,
    ) -> None:
        # One numpy bytes buffer, not a list of str: workers forked from the main process would
        # otherwise touch (and so copy) every string's refcount, a known PyTorch memory trap.
        self._files = np.array([os.fsencode(str(f)) for f in files], dtype=np.bytes_)
        n = len(self._files)
        self.targets = targets if targets is not None else torch.zeros(n, dtype=torch.long)
        if self.targets.shape[0] != n:
            raise ConfigError("image files and targets must have the same length")
        self.image_size = int(image_size)
        self.crop_size = int(crop_size) if crop_size else None
        self.channels = int(channels)
        self.max_substitutions = int(max_substitutions)
        #: Files that failed to decode in *this* process (each worker keeps its own).
        self.failed: set[str] = set()

    def __len__(self) -> int:
        return len(self._files)

    def file(self, index: int) -> str:
        return os.fsdecode(self._files[index])

    @property
    def files(self) -> list[str]:
        return [os.fsdecode(f) for f in self._files]

    def load(self, index: int) -> torch.Tensor:
        return load_image(self.file(index), self.image_size, self.crop_size, self.channels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self._files)
        for attempt in range(min(self.max_substitutions + 1, n)):
            candidate = (index + attempt) % n
            try:
                return self.load(candidate), self.targets[candidate]
            except (RuntimeError, OSError, ValueError) as err:
                path = self.file(candidate)
                if path not in self.failed:
                    self.failed.add(path)
                    log.warning(
                        "Unreadable image %s skipped (%s); the next file stands in for it. "
                        "data.verify=full finds such files before training.",
                        path,
                        str(err).splitlines()[0][:200],
                    )
        raise DataSourceError(
            f"{min(self.max_substitutions + 1, n)} unreadable images in a row starting at "
            f"{self.file(index)}; the data looks broken. Run with data.verify=full to list every "
            "unreadable file before training."
        )
