"""gan_lightning/data/decoding.py: the one decode -> crop -> resize path, and a readable
neighbour standing in for a file that fails in the middle of an epoch."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torchvision.io import write_png

from gan_lightning.data.decoding import ImageFileDataset, load_image
from gan_lightning.errors import DataSourceError


def png(path: Path, height: int, width: int, value: int = 0) -> Path:
    image = torch.full((3, height, width), value, dtype=torch.uint8)
    image[:, height // 2, :] = 255  # a bright row in the middle survives a centre crop
    write_png(image, str(path))
    return path


def test_load_image_crops_the_centre_square_and_resizes(tmp_path: Path):
    path = png(tmp_path / "wide.png", 30, 40)
    image = load_image(path, image_size=16)
    assert image.shape == (3, 16, 16) and image.dtype == torch.uint8
    assert image[:, 8].float().mean() > image[:, 0].float().mean()  # the middle row is bright
    assert load_image(path, image_size=30).shape == (3, 30, 30)  # no resize: just the crop
    assert load_image(path, image_size=8, channels=1).shape == (1, 8, 8)


def test_an_unreadable_file_is_replaced_by_the_next_and_named_once(tmp_path: Path, caplog):
    good = png(tmp_path / "good.png", 8, 8, value=10)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    dataset = ImageFileDataset([bad, good], torch.tensor([0, 1]), image_size=8)
    with caplog.at_level(logging.WARNING):
        image, target = dataset[0]
        dataset[0]
    assert int(target) == 1 and image.shape == (3, 8, 8)  # the neighbour stood in
    named = [r for r in caplog.records if "bad.png" in r.getMessage()]
    assert len(named) == 1


def test_a_run_of_unreadable_files_is_broken_data(tmp_path: Path):
    files = []
    for i in range(3):
        files.append(tmp_path / f"bad{i}.png")
        files[-1].write_bytes(b"")
    dataset = ImageFileDataset(files, image_size=8, max_substitutions=1)
    with pytest.raises(DataSourceError, match="unreadable images in a row"):
        dataset[0]
