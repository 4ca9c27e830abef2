"""CelebA's download: staged, renamed into place, and nothing left behind when it fails."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from gan_lightning.data.celeba import CELEBA_ATTRIBUTE_NAMES
from gan_lightning.data.sources import celeba
from gan_lightning.errors import DataSourceError
from tests.data.miniature import face_image


def fake_drive(fail_on: str | None = None):
    """A stand-in for torchvision's Google Drive download: writes miniature files."""

    def download(file_id: str, dest: Path, filename: str, md5: str) -> None:
        if filename == fail_on == "img_align_celeba.zip":  # cut off mid-way: a corrupt zip
            (dest / filename).write_bytes(b"PK\x03\x04" + b"\0" * 100)
        elif filename == "img_align_celeba.zip":
            with zipfile.ZipFile(dest / filename, "w") as archive:
                for i in range(6):
                    image = dest / f"tmp_{i}.jpg"
                    face_image(i).save(image)
                    archive.write(image, f"img_align_celeba/{i + 1:06d}.jpg")
                    image.unlink()
        elif filename == fail_on:
            (dest / filename).write_text("half a fi")
            raise RuntimeError("File not found or corrupted.")
        elif filename == "list_eval_partition.txt":
            (dest / filename).write_text("".join(f"{i + 1:06d}.jpg {i // 4}\n" for i in range(6)))
        else:
            rows = [" ".join([f"{i + 1:06d}.jpg"] + ["1"] * 40) for i in range(6)]
            header = ["6", " ".join(CELEBA_ATTRIBUTE_NAMES)]
            (dest / filename).write_text("\n".join(header + rows) + "\n")

    return download


def test_download_is_staged_and_renamed_into_place(tmp_path):
    layout = celeba.ensure_celeba(tmp_path, download=True, downloader=fake_drive())
    assert layout.images == tmp_path / "celeba" / "img_align_celeba"
    assert len(list(layout.images.glob("*.jpg"))) == 6
    assert layout.partition.is_file() and layout.attributes.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["celeba"]  # no staging dir left
    assert not (tmp_path / "celeba" / "img_align_celeba.zip").exists()


@pytest.mark.parametrize("fail_on", ["list_eval_partition.txt", "img_align_celeba.zip"])
def test_failed_download_leaves_no_half_tree(tmp_path, fail_on):
    with pytest.raises(DataSourceError) as err:
        celeba.ensure_celeba(tmp_path, download=True, downloader=fake_drive(fail_on=fail_on))
    assert "CelebA download failed (" in str(err.value)
    assert "Expected layout" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # nothing renamed into place, staging removed


def test_download_needs_gdown(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)  # import gdown -> ImportError
    with pytest.raises(DataSourceError, match="pip install gdown"):
        celeba.ensure_celeba(tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []
