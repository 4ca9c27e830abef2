"""CelebA: 202,599 aligned celebrity faces, streamed from disk and preprocessed like DCGAN.

Reads the official layout under ``<data_dir>/celeba`` (or Kaggle's re-upload; see
:func:`gan_lightning.data.sources.celeba.find_celeba`) and splits it by ``list_eval_partition``
(162,770 train / 19,867 valid / 19,962 test). Each image is center-cropped to 178x178 (the
face region of the 178x218 aligned images) and resized to ``image_size``; batches leave the
workers as uint8 and are scaled to ``pixel_range`` on the device.

torchvision's ``CelebA`` dataset is used for what it does well (its Google Drive file list
and downloader, :func:`gan_lightning.data.sources.celeba.fetch_celeba`), not for reading: it
insists on all five annotation files with matching md5 sums (identities, boxes, landmarks that
a GAN never uses) and decodes through PIL. Reading the two text files ourselves keeps the required
download to the images plus ``list_eval_partition.txt``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import torch

from gan_lightning.data.image_files import ImageFilesDataModule
from gan_lightning.data.sources.celeba import (
    CELEBA_SPLITS,
    CelebALayout,
    ensure_celeba,
    read_celeba_attributes,
    read_celeba_partition,
)
from gan_lightning.errors import ConfigError, DataSourceError

log = logging.getLogger(__name__)

#: The 40 binary attributes of ``list_attr_celeba.txt``, in file order.
CELEBA_ATTRIBUTE_NAMES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()


def check_attributes(attributes: Mapping[str, bool] | None) -> dict[str, bool]:
    """``{Male: false, Smiling: true}`` -> a validated dict; unknown names fail before training."""
    if not attributes:
        return {}
    if not isinstance(attributes, Mapping):
        raise ConfigError(
            f"data.attributes must be a mapping like {{Male: false, Smiling: true}}; got "
            f"{attributes!r}."
        )
    checked: dict[str, bool] = {}
    for name, wanted in dict(attributes).items():
        if name not in CELEBA_ATTRIBUTE_NAMES:
            raise ConfigError(
                f"data.attributes.{name} is not a CelebA attribute; choose from "
                f"{CELEBA_ATTRIBUTE_NAMES}."
            )
        if not isinstance(wanted, bool):
            raise ConfigError(
                f"data.attributes.{name}={wanted!r} must be true (has it) or false (has not)."
            )
        checked[str(name)] = wanted
    return checked


class CelebADataModule(ImageFilesDataModule):
    """CelebA with the official train/valid/test partition, optionally an attribute subset.

    Targets are the 40 attributes as 0/1 (N, 40) when ``list_attr_celeba.txt`` is present,
    else an empty (N, 0) tensor. ``attributes: {Male: false, Smiling: true}`` keeps only the
    images with every listed attribute set as given (in all three splits), as ``digits`` does
    for MNIST.
    """

    def __init__(
        self,
        attributes: Mapping[str, bool] | None = None,
        download: bool = False,
        image_size: int = 64,
        crop_size: int | None = 178,
        **kwargs,
    ) -> None:
        super().__init__(image_size=image_size, crop_size=crop_size, **kwargs)
        self.attributes = check_attributes(attributes)
        self.download = bool(download)
        self.attribute_names: list[str] = []

    def check_source(self) -> None:
        if not self.download:  # with download=true, prepare_data fetches what is missing
            ensure_celeba(self.data_dir, download=False, need_attributes=bool(self.attributes))

    def prepare_data(self) -> None:
        ensure_celeba(self.data_dir, self.download, need_attributes=bool(self.attributes))
        self.prepare_cache()

    def _targets(self, layout: CelebALayout, files: list[str]) -> torch.Tensor:
        """(N, 40) 0/1 attributes in partition-file order, or (N, 0) without the file."""
        if layout.attributes is None:
            return torch.zeros(len(files), 0, dtype=torch.long)
        names, attr_files, values = read_celeba_attributes(layout.attributes)
        self.attribute_names = names
        if attr_files != files:  # same order in the official files; align by name otherwise
            row = {name: i for i, name in enumerate(attr_files)}
            absent = [f for f in files if f not in row]
            if absent:
                raise DataSourceError(
                    f"{layout.attributes} has no row for {len(absent)} images of the partition "
                    f"file (e.g. {absent[:3]}); re-download {layout.attributes.name}."
                )
            values = values[[row[f] for f in files]]
        return torch.from_numpy(values.astype(np.int64))

    def build_splits(self):
        # Every rank checks (prepare_data ran, and possibly downloaded, on rank 0 only).
        layout = ensure_celeba(self.data_dir, download=False, need_attributes=bool(self.attributes))
        files, split = read_celeba_partition(layout.partition)
        targets = self._targets(layout, files)
        keep = np.ones(len(files), dtype=bool)
        if self.attributes:
            column = {name: i for i, name in enumerate(self.attribute_names)}
            for name, wanted in self.attributes.items():
                if name not in column:
                    raise DataSourceError(f"{layout.attributes} has no attribute {name!r}.")
                keep &= targets[:, column[name]].numpy() == int(wanted)
            self.subset_mask(
                torch.from_numpy(keep),
                f"data.attributes={self.attributes}",
                "relax the attribute filter.",
            )
        index = np.flatnonzero(keep)
        paths = [str(layout.images / files[i]) for i in index]
        paths, kept = self.readable(
            paths, torch.from_numpy(index), "CelebA images", cache_as=("celeba", layout.images)
        )
        kept_split = split[kept.numpy()]
        datasets = {}
        for name, code in CELEBA_SPLITS.items():
            rows = np.flatnonzero(kept_split == code)
            datasets[name] = self.dataset([paths[i] for i in rows], targets[kept[rows]])
        if len(datasets["train"]) == 0:
            raise DataSourceError(
                f"No CelebA training images left under {layout.images} (partition "
                f"{layout.partition.name} lists {int((split == 0).sum())})."
            )
        log.info(
            "CelebA: %d train / %d valid / %d test images%s, %s -> crop %s -> %dx%d",
            len(datasets["train"]),
            len(datasets["valid"]),
            len(datasets["test"]),
            f" with {self.attributes}" if self.attributes else "",
            layout.images,
            self.crop_size or "square",
            self.image_size,
            self.image_size,
        )
        valid = datasets["valid"] if len(datasets["valid"]) else datasets["test"]
        return datasets["train"], valid, datasets["test"]
