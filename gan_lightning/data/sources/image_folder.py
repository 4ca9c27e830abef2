"""The folder of a ``data=image_folder`` set, and what to say when it is missing or empty.

Three checks of increasing cost, each one the only copy of its rule: :func:`image_folder_path`
needs no disk (a DataModule's constructor may call it), :func:`image_folder_root` one stat
(``check_source``, before the model is built), :func:`find_image_folder` a full listing.
"""

from __future__ import annotations

import os
from pathlib import Path

from gan_lightning.data.sources.files import IMAGE_EXTENSIONS, find_images
from gan_lightning.errors import DataSourceError

#: ".jpg/.jpeg/.png/.webp", as the messages name the accepted files.
_KINDS = "/".join(IMAGE_EXTENSIONS)


def _missing(problem: str) -> DataSourceError:
    """``problem`` plus the layout expected and the override that points at it."""
    return DataSourceError(
        f"{problem}\nExpected: any folder of {_KINDS} images, searched "
        "recursively (subfolders are fine, e.g. an LSUN export or your own photos):\n"
        "  /some/dir/\n    a.jpg\n    more/b.png\n"
        "Point at it with data.path=/some/dir (e.g. python train.py data=image_folder "
        "data.path=/some/dir)."
    )


def image_folder_path(path: str | os.PathLike | None) -> str:
    """``data.path`` as a string, or the error saying it is not set; touches no disk, so configs
    stay instantiable (and a missing key is reported) without the data."""
    if path is None or str(path) == "":
        raise _missing("data.path is not set.")
    return str(path)


def image_folder_root(path: str | os.PathLike | None) -> Path:
    """The directory ``data.path`` names, checked with one stat (nothing is listed), so a wrong
    path is reported before the model is built."""
    root = Path(image_folder_path(path)).expanduser()
    if not root.is_dir():
        raise _missing(f"data.path={path} is not a directory.")
    return root


def find_image_folder(path: str | os.PathLike | None) -> list[Path]:
    """The images of a ``data=image_folder`` set, or an actionable :class:`DataSourceError`."""
    root = image_folder_root(path)
    files = find_images(root)
    if not files:
        raise _missing(f"No {_KINDS} files under {root}.")
    return files
