"""Any folder of images (your own photos, an LSUN export, FFHQ thumbnails...), streamed.

Recursively collects .jpg/.jpeg/.png/.webp files under ``path`` (class subfolders are not
required, unlike torchvision's ``ImageFolder``), and shares CelebA's whole path: the same
up-front file check, the same decode -> center crop -> resize, the same uint8 batches.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from gan_lightning.data.image_files import ImageFilesDataModule
from gan_lightning.data.sources.image_folder import (
    find_image_folder,
    image_folder_path,
    image_folder_root,
)

log = logging.getLogger(__name__)


class ImageFolderDataModule(ImageFilesDataModule):
    """Images under ``path``; ``val_size`` (a fraction or a count) is held out by a seeded
    permutation and doubles as the test set. Targets are all 0 (the folder has no labels).

    ``crop_size: null`` crops the largest centred square of each image before resizing, which
    suits images of any size; set it (e.g. 178 for CelebA-like 178x218 faces) to crop tighter.
    """

    def __init__(self, path: str | None = None, val_size: int | float = 0.05, **kwargs) -> None:
        super().__init__(val_size=val_size, **kwargs)
        self.path = image_folder_path(path)

    def check_source(self) -> None:
        image_folder_root(self.path)

    def prepare_data(self) -> None:
        find_image_folder(self.path)
        self.prepare_cache()

    def build_splits(self):
        files = find_image_folder(self.path)
        root = image_folder_root(self.path)
        files, _ = self.readable(
            files,
            torch.zeros(len(files), dtype=torch.long),
            "images",
            cache_as=(f"folder-{Path(root).resolve().name}", root),
        )
        if self.num_val(len(files)) == 0:
            train = self.dataset(files, None)
            log.info(
                "Image folder %s: %d images, data.val_size=0: validating on them",
                self.path,
                len(files),
            )
            return train, train, train
        train_idx, val_idx = self.split_indices(len(files))
        train = self.dataset([files[i] for i in train_idx], None)
        val = self.dataset([files[i] for i in val_idx], None)
        log.info(
            "Image folder %s: %d train / %d val images -> crop %s -> %dx%d",
            self.path,
            len(train),
            len(val),
            self.crop_size or "square",
            self.image_size,
            self.image_size,
        )
        return train, val, val
