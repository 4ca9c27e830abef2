"""Any image folder: recursive discovery, shared preprocessing, missing data, corrupt files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from gan_lightning.data.image_folder import ImageFolderDataModule
from gan_lightning.errors import DataSourceError
from gan_lightning.runtime.cli import user_error
from tests.conftest import compose_config
from tests.data.miniature import make_image_folder


def datamodule(path: Path, **kwargs) -> ImageFolderDataModule:
    kwargs.setdefault("batch_size", 4)
    kwargs.setdefault("image_size", 32)
    dm = ImageFolderDataModule(path=str(path), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_finds_jpg_png_webp_recursively_and_splits(tmp_path):
    files = make_image_folder(tmp_path, n=20)
    dm = datamodule(tmp_path, val_size=0.1)
    found = sorted(dm.train_set.files + dm.val_set.files)
    assert found == [str(f) for f in files]  # notes.txt ignored, subfolders searched
    assert {Path(f).suffix for f in found} == {".jpg", ".png", ".webp"}
    assert (len(dm.train_set), len(dm.val_set)) == (18, 2) and dm.test_set is dm.val_set
    again = datamodule(tmp_path, val_size=0.1)
    assert again.val_set.files == dm.val_set.files  # seeded split: same images every run
    assert datamodule(tmp_path, val_size=5).val_set.files != dm.val_set.files


@pytest.mark.parametrize("channels", [3, 1])
def test_mixed_sizes_come_out_square_uint8(tmp_path, channels):
    make_image_folder(tmp_path, n=12)
    dm = datamodule(tmp_path, channels=channels, val_size=0)
    assert dm.image_shape == (channels, 32, 32)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (4, channels, 32, 32) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 0, 0]
    assert dm.val_set is dm.train_set  # val_size=0: validate on the training images


def test_square_crop_keeps_the_center(tmp_path):
    """crop_size=null crops the largest centred square: a 40x80 image loses its top and bottom bands."""
    from tests.data.miniature import face_image

    face_image(0, 40, 80).save(tmp_path / "tall.png")  # bands are the top/bottom 20 rows
    dm = datamodule(tmp_path, val_size=0, batch_size=1)
    image = dm.train_set[0][0]
    assert image.shape == (3, 32, 32)
    assert image[0].float().mean() < 10 and image[2].float().mean() > 150


def test_missing_or_empty_folder_messages(tmp_path):
    with pytest.raises(DataSourceError, match=r"data.path is not set[\s\S]*data.path=/some/dir"):
        ImageFolderDataModule(path=None)
    with pytest.raises(DataSourceError, match="is not a directory"):
        ImageFolderDataModule(path=str(tmp_path / "nope")).check_source()
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(DataSourceError) as err:
        ImageFolderDataModule(path=str(tmp_path)).prepare_data()
    assert f"No .jpg/.jpeg/.png/.webp files under {tmp_path}" in str(err.value)
    assert "searched recursively" in str(err.value)


def test_config_without_path_is_a_cleanuser_error():
    cfg = compose_config(["data=image_folder"])
    with pytest.raises(Exception) as err:
        instantiate(cfg.data)
    user = user_error(err.value)  # what train.py prints as one line, exit 2
    assert isinstance(user, DataSourceError) and "data.path is not set" in str(user)


def test_corrupt_files_skipped_or_fatal(tmp_path, caplog):
    files = make_image_folder(tmp_path, n=20)
    files[3].write_bytes(b"\x89PNG but not really")
    with caplog.at_level(logging.WARNING):
        dm = datamodule(tmp_path, val_size=0, max_corrupt_fraction=0.1)
    assert len(dm.train_set) == 19 and str(files[3]) not in dm.train_set.files
    assert any(
        "1 of 20 images" in r.getMessage() and files[3].name in r.getMessage()
        for r in caplog.records
    )
    with pytest.raises(DataSourceError, match=files[3].name):
        datamodule(tmp_path, val_size=0, max_corrupt_fraction=0.0)
