"""The decoded cache of file-based sets (``data.cache=true``): every image decoded, cropped and
resized once into one uint8 ``(N, C, H, W)`` array on disk, then served like MNIST.

Without it, CelebA and image folders decode, crop and resize every file on every epoch in
DataLoader workers (~0.4 ms an image on one core: a few thousand images/s on a laptop, far
below what a GPU trains a 64x64 DCGAN on). With it, a batch is one gather from a memory-mapped
``.npy`` file (the page cache holds it after the first epoch; DDP ranks on a node share it).

Layout, under ``<data_dir>/cache/``::

    <set>-<size>px-<crop>-<rgb|gray>-<digest>.npy    the images, uint8, rows in file order
    <set>-<size>px-<crop>-<rgb|gray>-<digest>.json   its record: settings, files, skipped

One cache per set *and* settings (``image_size``, crop, channels: the digest covers them with
the set's root folder and :data:`CACHE_FORMAT_VERSION`), so runs at 64 and 128 pixels keep
their own. The record lists every file with its size and modification time: a file added,
removed or modified rebuilds the cache, and the log says which. The array is written to a
temporary file and renamed into place only when complete, the record after it (the old record
is removed first), so a build that is killed or fails leaves nothing that is trusted later.

Building decodes every file, so it is a ``data.verify=full`` check too: unreadable files are
skipped under ``data.max_corrupt_fraction`` as in the up-front check (too many stop the run
with their names), and the skipped ones are recorded, and judged again, with the then-current
``max_corrupt_fraction``, whenever the cache is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gan_lightning.data.sources.files import judge_unreadable
from gan_lightning.errors import ConfigError, FileSystemError
from gan_lightning.runtime.filesystem import (
    atomic_write_text,
    check_writable_dir,
    describe,
    free_bytes,
    human_bytes,
    space_hint,
)

log = logging.getLogger(__name__)

#: Bumped whenever what a cache holds or how it is decoded changes: older caches are rebuilt.
CACHE_FORMAT_VERSION = 1
#: What a failed cache write suggests.
CACHE_FIX = (
    "set data.cache=false (decode the files on the fly, as without the cache) or point "
    "paths.data_dir at a disk with room (the cache lives in <paths.data_dir>/cache)"
)
#: Images decoded per chunk of the build (bounds the memory of decoded, unwritten images).
CHUNK = 512
#: Files named in a rebuild's reason before "...".
NAMED = 3


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "images"


def _decode(path: str, image_size: int, crop_size: int | None, channels: int):
    from gan_lightning.data.decoding import load_image

    if not os.path.isfile(path):  # torchvision's read_file says so in a RuntimeError
        return None, "file not found"
    try:
        return load_image(path, image_size, crop_size, channels), None
    except (RuntimeError, OSError, ValueError) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        return None, text[:160]


class CachedImageDataset(Dataset):
    """Rows of a decoded cache (memory-mapped uint8 ``(N, C, H, W)``) with their targets: a
    batch is one gather (``__getitems__``), as :class:`TensorImageDataset` serves MNIST."""

    def __init__(
        self,
        images: np.ndarray,
        rows: np.ndarray,
        targets: torch.Tensor,
        files: Sequence[str] = (),
    ) -> None:
        if len(rows) != targets.shape[0]:
            raise ConfigError("cached rows and targets must have the same length")
        self.images = images
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = targets
        # One numpy bytes buffer (as ImageFileDataset): the names, for messages and tests.
        self._files = np.array([os.fsencode(str(f)) for f in files], dtype=np.bytes_)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def files(self) -> list[str]:
        return [os.fsdecode(f) for f in self._files]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(self.images[self.rows[index]])), self.targets[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        # Fancy indexing a memmap copies the rows into one new (B, C, H, W) array.
        return torch.from_numpy(self.images[self.rows[index]]), self.targets[index]

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


class DecodedCache:
    """The decoded cache of one set (``name``: e.g. ``celeba``; ``root``: the folder its files
    are under) at one setting of ``image_size``, ``crop_size`` and ``channels``."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        name: str,
        root: str | os.PathLike,
        image_size: int,
        crop_size: int | None,
        channels: int,
    ) -> None:
        self.directory = Path(data_dir).expanduser() / "cache"
        self.root = os.path.abspath(root)
        self.image_size, self.crop_size, self.channels = int(image_size), crop_size, int(channels)
        self.identity = {
            "format": CACHE_FORMAT_VERSION,
            "root": self.root,
            "image_size": self.image_size,
            "crop_size": None if crop_size is None else int(crop_size),
            "channels": self.channels,
        }
        digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()
        crop = "square" if crop_size is None else f"crop{int(crop_size)}"
        color = "rgb" if self.channels == 3 else "gray"
        self.prefix = _slug(name)
        self.name = f"{self.prefix}-{self.image_size}px-{crop}-{color}-{digest[:12]}"
        self.array_path = self.directory / f"{self.name}.npy"
        self.record_path = self.directory / f"{self.name}.json"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    # ------------------------------------------------------------------ fingerprint
    def fingerprint(self, files: Sequence[str]) -> list[list]:
        """``[relative path, size, mtime_ns]`` of each file, in order."""
        rows = []
        for f in files:
            try:
                stat = os.stat(f)
                size, mtime = stat.st_size, stat.st_mtime_ns
            except OSError:  # listed (CelebA's partition file) but absent: skipped when built
                size, mtime = -1, -1
            rows.append([os.path.relpath(f, self.root), size, mtime])
        return rows

    def stale(self, record: dict | None, fingerprint: list[list]) -> str | None:
        """Why the cache cannot serve ``fingerprint`` (``None``: it can)."""
        if record is None:
            return "no decoded cache for these files and settings yet"
        if record.get("identity") != self.identity:
            return (
                f"its record was made for {record.get('identity')}, not {self.identity} "
                f"(cache format {CACHE_FORMAT_VERSION})"
            )
        old = {row[0]: tuple(row[1:]) for row in record.get("files", [])}
        new = {row[0]: tuple(row[1:]) for row in fingerprint}
        added = [f for f in new if f not in old]
        removed = [f for f in old if f not in new]
        modified = [f for f in new if f in old and old[f] != new[f]]
        parts = [
            f"{len(found)} {how} (e.g. {', '.join(found[:NAMED])})"
            for found, how in ((added, "added"), (removed, "removed"), (modified, "modified"))
            if found
        ]
        if parts:
            return "the files changed: " + "; ".join(parts)
        if [row[0] for row in record["files"]] != [row[0] for row in fingerprint]:
            return "the files are listed in another order"
        try:
            array = np.load(self.array_path, mmap_mode="r")
        except (OSError, ValueError) as err:
            return f"its array {self.array_path} cannot be read ({err})"
        expected = (len(fingerprint) - len(record.get("unreadable", [])), *self.image_shape)
        if array.dtype != np.uint8 or tuple(array.shape) != expected:
            return (
                f"its array {self.array_path} is {array.dtype} {tuple(array.shape)}, not "
                f"uint8 {expected}"
            )
        return None

    def read_record(self) -> dict | None:
        try:
            return json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------------ use
    def open(
        self, files: Sequence[str], max_corrupt_fraction: float, what: str = "images"
    ) -> tuple[np.ndarray, list[int]]:
        """``(array, kept)``: the memory-mapped images of the readable ``files`` (row ``r`` is
        ``files[kept[r]]``), built first when missing or stale (the log says why)."""
        files = [str(f) for f in files]
        fingerprint = self.fingerprint(files)
        record = self.read_record()
        reason = self.stale(record, fingerprint)
        if reason is not None:
            level = logging.INFO if record is None else logging.WARNING  # a rebuild: say why
            log.log(level, "Building the decoded cache %s: %s.", self.array_path, reason)
            self._mention_others()
            record = self.build(files, fingerprint, max_corrupt_fraction, what)
        else:
            log.info("Serving %d %s from the decoded cache %s", len(files), what, self.array_path)
        # The skipped files, judged with this run's data.max_corrupt_fraction.
        reasons: list[str | None] = [None] * len(files)
        for index, why in record.get("unreadable", []):
            reasons[int(index)] = str(why)
        kept = judge_unreadable(files, reasons, max_corrupt_fraction, what)
        return np.load(self.array_path, mmap_mode="r"), kept

    def _mention_others(self) -> None:
        others = sorted(
            p.name
            for p in self.directory.glob(f"{self.prefix}-*.npy")
            if p != self.array_path and p.is_file()
        )
        if others:
            log.info(
                "Other decoded caches of %s in %s (delete those you no longer use): %s",
                self.prefix,
                self.directory,
                ", ".join(others),
            )

    # ------------------------------------------------------------------ build
    def check_space(self, count: int) -> None:
        """Refuse before writing when the disk has less room than the array needs."""
        needed = count * int(np.prod(self.image_shape)) + 4096
        free = free_bytes(self.directory)
        if free is not None and free < needed:
            raise FileSystemError(
                f"Not enough disk space for the decoded cache {self.array_path}: it needs "
                f"about {human_bytes(needed)} ({count} images of {self.channels}x"
                f"{self.image_size}x{self.image_size} bytes), {human_bytes(free)} free there; "
                f"{CACHE_FIX}.",
                path=self.array_path,
            )

    def build(
        self,
        files: Sequence[str],
        fingerprint: list[list],
        max_corrupt_fraction: float,
        what: str = "images",
    ) -> dict:
        """Decode every file into a new array, renamed into place when complete; the record
        follows. Returns the record."""
        check_writable_dir(self.directory, "the decoded-cache folder", fix=CACHE_FIX)
        self.check_space(len(files))
        start = time.perf_counter()
        tmp = self.directory / f".{self.name}.npy.tmp-{socket.gethostname()}-{os.getpid()}"
        row_bytes = int(np.prod(self.image_shape))
        try:
            with open(tmp, "wb") as handle:
                reasons = self._write(handle, files)
                written = len(files) - sum(r is not None for r in reasons)
                # Too many unreadable files stop here, before anything is renamed into place.
                judge_unreadable(files, reasons, max_corrupt_fraction, what)
                self._finish_header(handle, written, row_bytes)
                handle.flush()
                os.fsync(handle.fileno())
            record = {
                "identity": self.identity,
                "shape": [written, *self.image_shape],
                "files": fingerprint,
                "unreadable": [[i, r] for i, r in enumerate(reasons) if r is not None],
                "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.perf_counter() - start, 1),
            }
            # Old record out first: no moment where a record describes another array.
            self.record_path.unlink(missing_ok=True)
            os.replace(tmp, self.array_path)
            atomic_write_text(self.record_path, json.dumps(record))
        except OSError as err:
            line = describe(err, "Writing the decoded cache", self.array_path, CACHE_FIX)
            hint = space_hint(self.directory, len(files) * row_bytes)
            raise FileSystemError(
                f"{line.rstrip('.')} ({hint}; no cache was kept).", path=self.array_path
            ) from err
        finally:
            tmp.unlink(missing_ok=True)
        log.info(
            "Decoded cache %s: %d images (%s) in %.1f s",
            self.array_path,
            written,
            human_bytes(written * row_bytes),
            time.perf_counter() - start,
        )
        return record

    def _header(self, count: int) -> bytes:
        import io

        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer,
            {"descr": "|u1", "fortran_order": False, "shape": (count, *self.image_shape)},
        )
        return buffer.getvalue()

    def _write(self, handle, files: Sequence[str]) -> list[str | None]:
        """The ``.npy`` header (for ``len(files)`` rows) and the readable images, in order,
        with a progress bar; returns each file's failure reason (``None``: written)."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._header_bytes = len(self._header(len(files)))
        handle.write(self._header(len(files)))
        reasons: list[str | None] = []
        workers = min(8, os.cpu_count() or 1)
        args = (self.image_size, self.crop_size, self.channels)
        columns = (
            TextColumn("Decoding into the cache"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with ThreadPoolExecutor(max_workers=workers) as pool, Progress(*columns) as progress:
            task = progress.add_task("decode", total=len(files))
            for first in range(0, len(files), CHUNK):
                chunk = files[first : first + CHUNK]
                for image, reason in pool.map(lambda p: _decode(p, *args), chunk):
                    reasons.append(reason)
                    if image is not None:
                        handle.write(image.numpy().tobytes())
                progress.advance(task, len(chunk))
        return reasons

    def _finish_header(self, handle, count: int, row_bytes: int) -> None:
        """Rewrite the header for the ``count`` rows written (fewer than the files when some
        were unreadable) and cut the file there. numpy pads the header so that the first
        dimension can grow to 21 digits: its length does not change."""
        header = self._header(count)
        handle.seek(0)
        if len(header) != self._header_bytes:  # pragma: no cover - numpy's padding guards it
            raise RuntimeError("the .npy header changed length")
        handle.write(header)
        handle.truncate(len(header) + count * row_bytes)
        handle.seek(0, os.SEEK_END)
