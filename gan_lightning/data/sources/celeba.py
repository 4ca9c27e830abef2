"""CelebA on disk: the official and Kaggle layouts, the partition and attribute files, and the
download of the missing pieces.

CelebA (:func:`ensure_celeba`) is used where it already is; ``data.download=true`` fetches the
missing pieces with torchvision's Google Drive downloader (often rate-limited, hence opt-in),
into a staging directory whose complete pieces are renamed into place.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_lightning.errors import DataSourceError

log = logging.getLogger(__name__)

CELEBA_DIR = "celeba"
CELEBA_IMAGES = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_ATTRIBUTES = "list_attr_celeba.txt"
CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}
CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


@dataclass(frozen=True)
class CelebALayout:
    """Where the pieces of a CelebA copy are (``None``: missing).

    Two layouts are recognised: the official one (``list_*.txt``) and Kaggle's re-upload
    (``img_align_celeba/img_align_celeba/`` and ``list_*.csv``), which is what most people can
    actually download.
    """

    root: Path
    images: Path | None
    partition: Path | None
    attributes: Path | None

    def missing(self, need_attributes: bool) -> list[str]:
        wanted = {
            f"{CELEBA_IMAGES}/*.jpg": self.images,
            CELEBA_PARTITION: self.partition,
        }
        if need_attributes:
            wanted[CELEBA_ATTRIBUTES] = self.attributes
        return [name for name, found in wanted.items() if found is None]


def celeba_root(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / CELEBA_DIR


def _has_jpg(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return any(e.name.lower().endswith(".jpg") for e in entries)


def find_celeba(data_dir: str | os.PathLike) -> CelebALayout:
    root = celeba_root(data_dir)
    images = root / CELEBA_IMAGES
    if (images / CELEBA_IMAGES).is_dir():  # Kaggle's zip nests the folder in itself
        images = images / CELEBA_IMAGES
    found_images = images if images.is_dir() and _has_jpg(images) else None

    def first(stem: str) -> Path | None:
        for suffix in (".txt", ".csv"):
            if (root / f"{stem}{suffix}").is_file():
                return root / f"{stem}{suffix}"
        return None

    return CelebALayout(
        root=root,
        images=found_images,
        partition=first(Path(CELEBA_PARTITION).stem),
        attributes=first(Path(CELEBA_ATTRIBUTES).stem),
    )


def celeba_missing_message(data_dir: str | os.PathLike, missing: Sequence[str]) -> str:
    root = celeba_root(data_dir)
    return (
        f"CelebA not found: {', '.join(missing)} missing under {root}.\n"
        "Expected layout (the 'Align&Cropped Images' and annotation files of the official "
        "release):\n"
        f"  {root}/\n"
        f"    {CELEBA_IMAGES}/000001.jpg ... 202599.jpg   (unzip img_align_celeba.zip here)\n"
        f"    {CELEBA_PARTITION}                      (official train/valid/test split)\n"
        f"    {CELEBA_ATTRIBUTES}                         (optional; needed for data.attributes)\n"
        "Kaggle's copy (img_align_celeba/img_align_celeba/, list_*.csv) works as it is.\n"
        f"Get the files from {CELEBA_URL} and put them there (the folder is "
        f"<paths.data_dir>/celeba, paths.data_dir={data_dir}), or point at an existing copy with "
        "paths.data_dir=/dir/containing/celeba (or GAN_LIGHTNING_DATA_DIR=...), or try "
        "torchvision's Google Drive download with data.download=true (needs `pip install gdown`; "
        "often fails on Drive's quota)."
    )


def _rows(path: Path) -> list[list[str]]:
    """Whitespace- or comma-separated rows (the official .txt files and Kaggle's .csv)."""
    with open(path) as handle:
        return [line.replace(",", " ").split() for line in handle if line.strip()]


def read_celeba_partition(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """``(file names, split ids)``: 0 train, 1 valid, 2 test."""
    rows = _rows(Path(path))
    if rows and not rows[0][-1].lstrip("-").isdigit():
        rows = rows[1:]  # csv header "image_id,partition"
    bad = [r for r in rows if len(r) != 2 or r[1] not in ("0", "1", "2")]
    if bad or not rows:
        raise DataSourceError(
            f"{path} is not a CelebA partition file (expected lines '<image>.jpg <0|1|2>'; "
            f"got {' '.join(bad[0]) if bad else 'no lines'!r}); re-download it."
        )
    return [r[0] for r in rows], np.array([int(r[1]) for r in rows], dtype=np.int64)


def read_celeba_attributes(path: str | os.PathLike) -> tuple[list[str], list[str], np.ndarray]:
    """``(attribute names, file names, values)`` with values a bool (N, 40) array."""
    rows = _rows(Path(path))
    if rows and len(rows[0]) == 1 and rows[0][0].isdigit():
        rows = rows[1:]  # the .txt starts with the image count
    if len(rows) < 2:
        raise DataSourceError(f"{path} is not a CelebA attribute file (too few lines).")
    names = rows[0][1:] if rows[0][0] == "image_id" else rows[0]
    body = rows[1:]
    try:
        values = np.array([r[1:] for r in body], dtype=np.int8)
    except ValueError as err:
        raise DataSourceError(
            f"{path} is not a CelebA attribute file (expected '<image>.jpg' and one -1/1 per "
            f"attribute on each line): {err}"
        ) from err
    if values.ndim != 2 or values.shape[1] != len(names):
        raise DataSourceError(
            f"{path}: {len(names)} attribute names but rows of {values.shape[-1]} values."
        )
    return names, [r[0] for r in body], values > 0


def _celeba_drive_files() -> list[tuple[str, str, str]]:
    """(Google Drive id, md5, file name) of the three files this project needs, taken from
    torchvision's list (the identity/box/landmark files it also lists are not needed)."""
    from torchvision.datasets import CelebA

    needed = {f"{CELEBA_IMAGES}.zip", CELEBA_PARTITION, CELEBA_ATTRIBUTES}
    return [entry for entry in CelebA.file_list if entry[2] in needed]


def google_drive_download(file_id: str, dest: Path, filename: str, md5: str) -> None:
    """torchvision's Google Drive downloader (gdown underneath), md5-checked."""
    try:
        import gdown  # noqa: F401
    except ImportError as err:
        raise DataSourceError(
            "data.download=true uses torchvision's Google Drive downloader, which needs gdown: "
            "pip install gdown"
        ) from err
    from torchvision.datasets.utils import download_file_from_google_drive

    download_file_from_google_drive(file_id, str(dest), filename, md5)


def fetch_celeba(data_dir: str | os.PathLike, downloader=google_drive_download) -> Path:
    """Download the missing CelebA pieces into a staging dir and rename them into place.

    Extraction happens inside ``<data_dir>/.celeba-download-*``; only once every missing piece
    is downloaded (md5-checked) and extracted are they renamed into ``<data_dir>/celeba`` (a
    rename on the same filesystem is atomic), and the staging dir is removed whatever happens,
    so an interrupted download leaves nothing behind.
    """
    layout = find_celeba(data_dir)
    root = layout.root
    wanted = {
        f"{CELEBA_IMAGES}.zip": layout.images is None,
        CELEBA_PARTITION: layout.partition is None,
        CELEBA_ATTRIBUTES: layout.attributes is None,
    }
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=data_dir, prefix=".celeba-download-"))
    try:
        # Small text files first: a refusing Drive quota shows up before 1.4 GB are fetched.
        for file_id, md5, filename in sorted(
            _celeba_drive_files(), key=lambda e: e[2].endswith(".zip")
        ):
            if wanted.get(filename):
                log.info("CelebA: downloading %s", filename)
                downloader(file_id, staging, filename, md5)
        archive = staging / f"{CELEBA_IMAGES}.zip"
        if wanted[f"{CELEBA_IMAGES}.zip"]:
            from torchvision.datasets.utils import extract_archive

            log.info("CelebA: extracting %s", archive.name)
            extract_archive(str(archive), str(staging))
            archive.unlink()
            if not (staging / CELEBA_IMAGES).is_dir() or not _has_jpg(staging / CELEBA_IMAGES):
                raise DataSourceError(f"{archive.name} did not contain {CELEBA_IMAGES}/*.jpg.")
        root.mkdir(parents=True, exist_ok=True)
        for piece in sorted(staging.iterdir()):
            target = root / piece.name
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()  # an empty leftover folder; replace it
            os.replace(piece, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def ensure_celeba(
    data_dir: str | os.PathLike,
    download: bool = False,
    need_attributes: bool = False,
    downloader=google_drive_download,
) -> CelebALayout:
    """CelebA's layout under ``data_dir``; missing pieces are downloaded (``download``) or
    reported with the exact layout expected and how to point elsewhere."""
    layout = find_celeba(data_dir)
    missing = layout.missing(need_attributes)
    if not missing:
        log.info("CelebA source: existing files in %s", layout.root)
        return layout
    if not download:
        raise DataSourceError(celeba_missing_message(data_dir, missing))
    try:
        fetch_celeba(data_dir, downloader)
    except (DataSourceError, OSError, RuntimeError, zipfile.BadZipFile) as err:
        raise DataSourceError(
            f"CelebA download failed ({err}).\n" + celeba_missing_message(data_dir, missing)
        ) from err
    layout = find_celeba(data_dir)
    missing = layout.missing(need_attributes)
    if missing:
        raise DataSourceError(celeba_missing_message(data_dir, missing))
    log.info("CelebA source: torchvision download -> %s", layout.root)
    return layout
