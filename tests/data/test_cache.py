"""The decoded cache (``data.cache=true``) of image folders and CelebA: served batches equal the
streamed pipeline's bit for bit, every change of files or settings rebuilds it, a failed build
leaves nothing trusted, corrupt files follow ``max_corrupt_fraction``, and a full or unwritable
disk is refused with one clear line."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import torch

from gan_lightning.data import cache as cache_module
from gan_lightning.data.cache import CachedImageDataset, DecodedCache
from gan_lightning.data.celeba import CelebADataModule
from gan_lightning.data.decoding import ImageFileDataset
from gan_lightning.data.image_folder import ImageFolderDataModule
from gan_lightning.errors import DataSourceError, FileSystemError
from tests.conftest import SMOKE, compose_config
from tests.data.miniature import face_image, make_celeba_tree, make_image_folder


def folder_dm(images: Path, data_dir: Path, **kwargs) -> ImageFolderDataModule:
    kwargs.setdefault("batch_size", 4)
    kwargs.setdefault("image_size", 16)
    kwargs.setdefault("val_size", 0.2)
    dm = ImageFolderDataModule(path=str(images), data_dir=str(data_dir), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def all_images(dataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def cache_files(data_dir: Path) -> list[str]:
    folder = data_dir / "cache"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def assert_same_data(cached, streamed) -> None:
    """Same files, images (bit for bit) and targets, index for index."""
    assert isinstance(cached, CachedImageDataset) and isinstance(streamed, ImageFileDataset)
    assert cached.files == streamed.files
    images, targets = cached.__getitems__(list(range(len(cached))))
    assert images.dtype == torch.uint8 and torch.equal(images, all_images(streamed))
    assert torch.equal(targets, streamed.targets)


@pytest.fixture
def images(tmp_path) -> Path:
    make_image_folder(tmp_path / "images", n=20)
    return tmp_path / "images"


def test_cached_batches_equal_the_streamed_ones_bit_for_bit(images, tmp_path, caplog):
    data_dir = tmp_path / "data"
    streamed = folder_dm(images, data_dir)
    with caplog.at_level(logging.INFO):
        cached = folder_dm(images, data_dir, cache=True, num_workers=2)
    assert any("no decoded cache for these files" in r.getMessage() for r in caplog.records)
    names = cache_files(data_dir)
    assert len(names) == 2 and names[0].startswith("folder-images-16px-square-rgb-")
    assert {Path(n).suffix for n in names} == {".json", ".npy"}
    assert_same_data(cached.train_set, streamed.train_set)
    assert_same_data(cached.val_set, streamed.val_set)
    # Served like MNIST: stacked batches from the main process, in the same (seeded) order.
    assert cached.in_memory and cached.num_workers == 0
    for a, b in zip(cached.train_dataloader(), streamed.train_dataloader(), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # A second run reads the cache, builds nothing.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = folder_dm(images, data_dir, cache=True)
    assert any("Serving 20 images from the decoded cache" in r.getMessage() for r in caplog.records)
    assert not any("Building" in r.getMessage() for r in caplog.records)
    assert_same_data(again.train_set, streamed.train_set)


def test_celeba_cache_keeps_splits_and_attributes(tmp_path):
    data_dir = tmp_path / "data"
    make_celeba_tree(data_dir, n=36)
    kwargs = {"batch_size": 4, "image_size": 16, "attributes": {"Male": True}}
    streamed = CelebADataModule(data_dir=str(data_dir), **kwargs)
    streamed.setup("fit")
    cached = CelebADataModule(data_dir=str(data_dir), cache=True, **kwargs)
    cached.prepare_data()  # builds (rank 0's job), and sets up this process
    assert cached.train_set is not None and cache_files(data_dir)[0].startswith("celeba-16px")
    for split in ("train_set", "val_set", "test_set"):
        assert_same_data(getattr(cached, split), getattr(streamed, split))
    assert cached.train_set.targets.shape[1] == 40


def rebuilt(caplog, why: str) -> bool:
    return any(
        "Building the decoded cache" in r.getMessage() and why in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("change", ["added", "removed", "modified"])
def test_changed_files_rebuild_the_cache(images, tmp_path, caplog, change):
    data_dir = tmp_path / "data"
    folder_dm(images, data_dir, cache=True)
    names = cache_files(data_dir)
    target = images / "img_000.jpg"
    if change == "added":
        face_image(99, 50, 60).save(images / "new.png")
    elif change == "removed":
        target.unlink()
    else:  # same name, new content (and a new mtime, even on coarse file systems)
        face_image(77, 60, 50).save(target)
        os.utime(target, ns=(10**18, 10**18))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        cached = folder_dm(images, data_dir, cache=True)
    expected = {"added": "new.png", "removed": "img_000.jpg", "modified": "img_000.jpg"}
    assert rebuilt(caplog, f"1 {change} (e.g. {expected[change]})")
    assert cache_files(data_dir) == names  # rebuilt in place, same settings
    streamed = folder_dm(images, data_dir)
    assert_same_data(cached.train_set, streamed.train_set)
    assert_same_data(cached.val_set, streamed.val_set)


@pytest.mark.parametrize(
    "setting", [{"image_size": 8}, {"crop_size": 30}, {"channels": 1}], ids=str
)
def test_other_settings_build_their_own_cache(images, tmp_path, caplog, setting):
    data_dir = tmp_path / "data"
    folder_dm(images, data_dir, cache=True)
    before = cache_files(data_dir)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        cached = folder_dm(images, data_dir, cache=True, **setting)
    assert rebuilt(caplog, "no decoded cache for these files and settings yet")
    assert any("Other decoded caches of folder-images" in r.getMessage() for r in caplog.records)
    after = cache_files(data_dir)
    assert len(after) == 4 and set(before) < set(after)  # the other setting's cache is kept
    assert_same_data(cached.train_set, folder_dm(images, data_dir, **setting).train_set)


def test_a_new_cache_format_rebuilds(images, tmp_path, caplog, monkeypatch):
    data_dir = tmp_path / "data"
    folder_dm(images, data_dir, cache=True)
    monkeypatch.setattr(cache_module, "CACHE_FORMAT_VERSION", 2)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        folder_dm(images, data_dir, cache=True)
    assert rebuilt(caplog, "no decoded cache")  # the version is part of the cache's name
    assert len(cache_files(data_dir)) == 4


def cache_of(images: Path, data_dir: Path) -> DecodedCache:
    return DecodedCache(data_dir, "folder-images", images, 16, None, 3)


def test_a_failed_build_leaves_nothing_trusted(images, tmp_path, monkeypatch, caplog):
    data_dir = tmp_path / "data"
    folder_dm(images, data_dir, cache=True)
    cache = cache_of(images, data_dir)
    assert cache.array_path.is_file() and cache.record_path.is_file()
    face_image(5, 40, 40).save(images / "new.png")  # a rebuild is due

    def disk_full(self, handle, count, row_bytes):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DecodedCache, "_finish_header", disk_full)
    with pytest.raises(FileSystemError) as err:
        folder_dm(images, data_dir, cache=True)
    message = str(err.value)
    assert "Writing the decoded cache" in message and "no space left" in message
    assert "data.cache=false" in message and "no cache was kept" in message
    leftovers = [n for n in cache_files(data_dir) if ".tmp-" in n]
    assert leftovers == []  # the temporary array is removed
    monkeypatch.undo()
    # The old array and record are still there, but they describe the old files: not served.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        cached = folder_dm(images, data_dir, cache=True)
    assert rebuilt(caplog, "1 added (e.g. new.png)")
    assert_same_data(cached.train_set, folder_dm(images, data_dir).train_set)


def test_a_killed_build_or_a_damaged_array_is_not_trusted(images, tmp_path, caplog):
    data_dir = tmp_path / "data"
    folder_dm(images, data_dir, cache=True)
    cache = cache_of(images, data_dir)
    # A build killed mid-write leaves only its temporary file (never the final name).
    (cache.directory / f".{cache.name}.npy.tmp-host-1").write_bytes(b"\x93NUMPY half")
    # A damaged array (truncated by hand) under a record that matches the files.
    data = cache.array_path.read_bytes()
    cache.array_path.write_bytes(data[: len(data) // 2])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        cached = folder_dm(images, data_dir, cache=True)
    assert rebuilt(caplog, "cannot be read")
    assert_same_data(cached.train_set, folder_dm(images, data_dir).train_set)
    # An array without its record (killed between the rename and the record): rebuilt.
    cache.record_path.unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        folder_dm(images, data_dir, cache=True)
    assert rebuilt(caplog, "no decoded cache for these files")


def test_unreadable_files_follow_max_corrupt_fraction(images, tmp_path, caplog):
    data_dir = tmp_path / "data"
    bad = images / "png" / "sub1" / "img_001.png"
    bad.write_bytes(b"\x89PNG but not really")
    # A truncated JPEG passes the header check: the build's full decode finds it.
    good = images / "img_006.jpg"
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataSourceError, match="2 of 20 images"):
        folder_dm(images, data_dir, cache=True, max_corrupt_fraction=0.05)
    assert [n for n in cache_files(data_dir) if n.endswith((".npy", ".json"))] == []
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        cached = folder_dm(images, data_dir, cache=True, max_corrupt_fraction=0.1, val_size=0)
    assert len(cached.train_set) == 18
    assert bad.name in " ".join(r.getMessage() for r in caplog.records)
    assert str(good) not in cached.train_set.files
    streamed = folder_dm(images, data_dir, verify="full", max_corrupt_fraction=0.1, val_size=0)
    assert_same_data(cached.train_set, streamed.train_set)  # the cache is verify=full
    record = json.loads(cache_of(images, data_dir).record_path.read_text())
    assert len(record["unreadable"]) == 2
    # The skipped files are judged again with each run's max_corrupt_fraction.
    with pytest.raises(DataSourceError, match="data.max_corrupt_fraction=0.0"):
        folder_dm(images, data_dir, cache=True, max_corrupt_fraction=0.0)


def test_not_enough_disk_space_is_refused_with_the_size(images, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    real = shutil.disk_usage
    monkeypatch.setattr(
        shutil,
        "disk_usage",
        lambda path: usage(10**9, 10**9 - 1000, 1000) if "data" in str(path) else real(path),
    )
    with pytest.raises(FileSystemError) as err:
        folder_dm(images, tmp_path / "data", cache=True)
    message = str(err.value)
    # 20 images of 3x16x16 bytes (+ 4096 for the header): 19.5 KB.
    assert "Not enough disk space for the decoded cache" in message
    assert "19.5 KB" in message and "1.0 KB free there" in message
    assert "data.cache=false" in message and "paths.data_dir" in message
    assert "\n" not in message
    assert not any(n.endswith(".npy") for n in cache_files(tmp_path / "data"))


def test_an_unwritable_data_dir_is_one_clear_line(images, tmp_path):
    (tmp_path / "data").write_text("a file where the data folder should be")
    with pytest.raises(FileSystemError) as err:
        folder_dm(images, tmp_path / "data", cache=True)
    message = str(err.value)
    assert "decoded-cache folder" in message and "is not a directory" in message
    assert "data.cache=false" in message


def test_a_dcgan_trains_from_the_cache(images, tmp_path):
    from gan_lightning.train import run

    data_dir, run_dir = tmp_path / "data", tmp_path / "run"
    overrides = [
        "model=dcgan", "model.generator.base_width=8", "model.discriminator.base_width=8",
        "data=image_folder", f"data.path={images}", "data.image_size=8", "data.batch_size=4",
        "data.cache=true", "data.val_size=4", f"paths.data_dir={data_dir}", *SMOKE,
    ]  # fmt: skip
    run(compose_config(overrides, run_dir))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert any(n.startswith("folder-images-8px-square-rgb-") for n in cache_files(data_dir))


def test_the_loader_benchmark_measures_both_paths(tmp_path):
    from benchmarks.loader import measure_loader

    result = measure_loader(images=12, image_size=8, epochs=1, workers=0, batch_size=4)
    assert result["streamed"]["images"] == result["cached"]["images"] == 12
    assert result["ratio"] > 0 and result["train_images"] == 12 and result["cpu"]


def test_the_key_is_checked_like_every_data_key(images, tmp_path):
    from gan_lightning.errors import ConfigError
    from gan_lightning.runtime.config_checks import check_config

    for data in (["data=image_folder", f"data.path={images}"], ["data=celeba"]):
        cfg = compose_config([*data, "data.cache=yes"], tmp_path)
        with pytest.raises(ConfigError, match="data.cache='yes' must be true or false"):
            check_config(cfg)
        check_config(compose_config([*data, "data.cache=true"], tmp_path))
