"""The folder of a ``data=image_folder`` set, and what to say when it is missing or empty."""

from __future__ import annotations

import os
from pathlib import Path

from gan_lightning.data.sources.files import find_images
from gan_lightning.errors import DataSourceError


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
