"""Image files, whatever set they belong to: finding them under a folder (:func:`find_images`)
and checking before training that they can be read (:func:`check_images`, with the
``data.verify`` and ``data.max_corrupt_fraction`` options), so CelebA and image folders share
one discovery rule and one corrupt-file policy.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from gan_lightning.errors import ConfigError, DataSourceError

log = logging.getLogger(__name__)

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
    return judge_unreadable(paths, reasons, max_corrupt_fraction, what)


def judge_unreadable(
    paths: Sequence[str],
    reasons: Sequence[str | None],
    max_corrupt_fraction: float,
    what: str = "images",
) -> list[int]:
    """The corrupt-file policy on the outcome of reading ``paths`` (``reasons[i]`` is ``None``
    for a readable file, else why it is not): the indices of the readable ones, after a warning
    naming the others, or :class:`DataSourceError` above ``max_corrupt_fraction``. Shared by
    the up-front check and the decoded cache's build (:mod:`gan_lightning.data.cache`)."""
    bad = [(p, r) for p, r in zip(paths, reasons, strict=True) if r is not None]
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
