"""Miniature on-disk datasets for tests: a CelebA-layout tree and a plain image folder.

Images are small but keep CelebA's 178x218 aligned-face geometry, with a red band in the top
20 rows and a green band in the bottom 20: exactly what the 178x178 center crop removes, so a
test can see that the crop happened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gan_lightning.data.celeba import CELEBA_ATTRIBUTE_NAMES

WIDTH, HEIGHT, BAND = 178, 218, 20


def face_image(index: int, width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    """A blue 'face' area with red (top) and green (bottom) bands outside the center crop."""
    rng = np.random.default_rng(index)
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, :, 2] = 160 + rng.integers(0, 60)  # blue face area
    pixels[:, :, 1] = rng.integers(0, 60)
    pixels[:BAND] = (255, 0, 0)
    pixels[height - BAND :] = (0, 255, 0)
    return Image.fromarray(pixels)


def partition_of(i: int, n: int) -> int:
    """First 2/3 train, then 1/6 valid, 1/6 test (CelebA's files are ordered the same way)."""
    return 0 if i < n * 2 // 3 else (1 if i < n * 5 // 6 else 2)


def attributes_of(i: int) -> dict[str, int]:
    """Male on odd images, Smiling on every third: a filter selects a known set."""
    return {"Male": 1 if i % 2 else -1, "Smiling": 1 if i % 3 == 0 else -1}


def make_celeba_tree(
    data_dir: Path, n: int = 36, attributes: bool = True, kaggle: bool = False
) -> Path:
    """``<data_dir>/celeba`` in the official layout (or Kaggle's: nested folder, csv files)."""
    root = Path(data_dir) / "celeba"
    images = root / "img_align_celeba"
    if kaggle:
        images = images / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        face_image(i).save(images / name, quality=95)
    sep = "," if kaggle else " "
    suffix = ".csv" if kaggle else ".txt"
    lines = (["image_id,partition"] if kaggle else []) + [
        f"{name}{sep}{partition_of(i, n)}" for i, name in enumerate(names)
    ]
    (root / f"list_eval_partition{suffix}").write_text("\n".join(lines) + "\n")
    if attributes:
        rows = []
        for i, name in enumerate(names):
            values = attributes_of(i)
            rows.append(sep.join([name] + [str(values.get(a, -1)) for a in CELEBA_ATTRIBUTE_NAMES]))
        if kaggle:
            header = ["image_id," + ",".join(CELEBA_ATTRIBUTE_NAMES)]
        else:
            header = [str(n), " ".join(CELEBA_ATTRIBUTE_NAMES)]
        (root / f"list_attr_celeba{suffix}").write_text("\n".join(header + rows) + "\n")
    return root


def make_image_folder(root: Path, n: int = 20) -> list[Path]:
    """Mixed formats and sizes in nested folders: jpg at the top, png and webp below."""
    root = Path(root)
    files = []
    for i in range(n):
        kind = ("jpg", "png", "webp")[i % 3]
        folder = root if kind == "jpg" else root / kind / f"sub{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        size = (40 + 7 * (i % 4), 30 + 5 * (i % 5))
        path = folder / f"img_{i:03d}.{kind}"
        face_image(i, *size).save(path)
        files.append(path)
    (root / "notes.txt").write_text("not an image")
    return sorted(files)
