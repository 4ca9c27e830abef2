"""The image-folder checks: each rule once, the same message from the DataModule and sources."""

from __future__ import annotations

import pytest

from gan_lightning.data.image_folder import ImageFolderDataModule
from gan_lightning.data.sources.image_folder import (
    find_image_folder,
    image_folder_path,
    image_folder_root,
)
from gan_lightning.errors import DataSourceError


@pytest.mark.parametrize("path", [None, ""])
def test_unset_path_is_reported_without_the_disk(path):
    with pytest.raises(DataSourceError, match=r"^data.path is not set\.\nExpected"):
        image_folder_path(path)


def test_a_file_is_not_a_folder_and_check_source_says_so_the_same_way(tmp_path):
    a_file = tmp_path / "a.jpg"
    a_file.write_bytes(b"")
    with pytest.raises(DataSourceError) as from_sources:
        image_folder_root(a_file)
    with pytest.raises(DataSourceError) as from_listing:
        find_image_folder(a_file)
    with pytest.raises(DataSourceError) as from_datamodule:
        ImageFolderDataModule(path=str(a_file)).check_source()
    assert str(from_sources.value).startswith(f"data.path={a_file} is not a directory.")
    assert str(from_datamodule.value) == str(from_sources.value) == str(from_listing.value)


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "photos").mkdir()
    assert image_folder_root("~/photos") == tmp_path / "photos"
