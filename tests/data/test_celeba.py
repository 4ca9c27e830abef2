"""CelebA on a miniature tree generated per test: splits, preprocessing, attribute filter,
corrupt files, missing-data message, and a DCGAN smoke run (download staging is tested in
tests/data/sources/test_celeba.py)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_lightning.data.celeba import CELEBA_ATTRIBUTE_NAMES, CelebADataModule
from gan_lightning.data.sources.celeba import CELEBA_URL
from gan_lightning.errors import ConfigError, DataSourceError
from tests.conftest import REPO, SMOKE, compose_config
from tests.data.miniature import attributes_of, make_celeba_tree, partition_of

N = 36  # 24 train / 6 valid / 6 test


@pytest.fixture
def data_dir(tmp_path) -> Path:
    make_celeba_tree(tmp_path / "data", n=N)
    return tmp_path / "data"


def datamodule(data_dir: Path, **kwargs) -> CelebADataModule:
    kwargs.setdefault("batch_size", 4)
    dm = CelebADataModule(data_dir=str(data_dir), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def names(dataset) -> list[str]:
    return [Path(f).name for f in dataset.files]


def expected(split: int, keep=lambda i: True) -> list[str]:
    return [f"{i + 1:06d}.jpg" for i in range(N) if partition_of(i, N) == split and keep(i)]


def test_splits_follow_the_official_partition(data_dir):
    dm = datamodule(data_dir)
    assert names(dm.train_set) == expected(0)
    assert names(dm.val_set) == expected(1)
    assert names(dm.test_set) == expected(2)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (24, 6, 6)


@pytest.mark.parametrize("image_size", [64, 32])
def test_center_crop_and_resize(data_dir, image_size):
    dm = datamodule(data_dir, image_size=image_size)
    assert dm.image_shape == (3, image_size, image_size)
    images, targets = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, image_size, image_size) and images.dtype == torch.uint8
    assert targets.shape == (4, len(CELEBA_ATTRIBUTE_NAMES))
    # The red (top) and green (bottom) bands lie outside the 178x178 center crop.
    red, green, blue = images.float().mean(dim=(0, 2, 3)).tolist()
    assert red < 10 and green < 70 and blue > 150
    # Without the crop (the whole 178x218 image squeezed) the bands would show up: check the
    # shared loader really crops, by loading one file uncropped.
    from gan_lightning.data.decoding import load_image

    whole = load_image(dm.train_set.files[0], image_size, crop_size=218)
    assert whole[0].float().max() > 200  # the padded crop keeps the red band
    converted, _ = dm.on_after_batch_transfer((images, targets), 0)
    assert converted.dtype == torch.float32
    assert -1.0 <= converted.min() and converted.max() <= 1.0


def test_attribute_filter_selects_the_subset_in_every_split(data_dir):
    wanted = {"Male": False, "Smiling": True}
    dm = datamodule(data_dir, attributes=wanted)

    def keep(i):
        return attributes_of(i)["Male"] == -1 and attributes_of(i)["Smiling"] == 1

    assert names(dm.train_set) == expected(0, keep) and len(dm.train_set) == 4
    assert names(dm.val_set) == expected(1, keep)
    assert names(dm.test_set) == expected(2, keep)
    male = CELEBA_ATTRIBUTE_NAMES.index("Male")
    smiling = CELEBA_ATTRIBUTE_NAMES.index("Smiling")
    assert (
        dm.train_set.targets[:, male].eq(0).all() and dm.train_set.targets[:, smiling].eq(1).all()
    )


def test_attribute_filter_errors(data_dir):
    with pytest.raises(ConfigError, match="Smilling is not a CelebA attribute.*Smiling"):
        CelebADataModule(data_dir=str(data_dir), attributes={"Smilling": True})
    with pytest.raises(ConfigError, match="true .*or false"):
        CelebADataModule(data_dir=str(data_dir), attributes={"Male": "yes"})
    with pytest.raises(ConfigError, match="selects no samples"):
        datamodule(data_dir, attributes={"Bald": True})  # nobody is bald in the miniature


def test_attribute_filter_needs_the_attribute_file(tmp_path):
    make_celeba_tree(tmp_path, n=12, attributes=False)
    dm = datamodule(tmp_path)  # fine without a filter: targets are empty
    assert dm.train_set.targets.shape == (8, 0)
    with pytest.raises(DataSourceError, match="list_attr_celeba.txt missing"):
        CelebADataModule(data_dir=str(tmp_path), attributes={"Male": True}).check_source()


def test_kaggle_layout_reads_the_same(tmp_path, data_dir):
    make_celeba_tree(tmp_path / "kaggle", n=N, kaggle=True)
    official = datamodule(data_dir, attributes={"Male": True})
    kaggle = datamodule(tmp_path / "kaggle", attributes={"Male": True})
    for split in ("train_set", "val_set", "test_set"):
        assert names(getattr(kaggle, split)) == names(getattr(official, split))
        assert torch.equal(getattr(kaggle, split).targets, getattr(official, split).targets)


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(b"this is not a jpeg" if how == "garbage" else data[: len(data) // 3])


def test_unreadable_files_are_skipped_and_named(data_dir, caplog):
    images = data_dir / "celeba" / "img_align_celeba"
    corrupt(images / "000002.jpg", "garbage")
    (images / "000005.jpg").unlink()  # listed in the partition, missing on disk
    with caplog.at_level(logging.WARNING):
        dm = datamodule(data_dir, max_corrupt_fraction=0.1)
    assert len(dm.train_set) == 22
    assert "000002.jpg" not in names(dm.train_set) and "000005.jpg" not in names(dm.train_set)
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "2 of 36 CelebA images" in warning
    assert "000002.jpg" in warning and "000005.jpg (file not found)" in warning


def test_too_many_unreadable_files_stop_before_training(data_dir):
    images = data_dir / "celeba" / "img_align_celeba"
    for name in ("000001.jpg", "000003.jpg", "000030.jpg"):
        corrupt(images / name, "garbage")
    with pytest.raises(DataSourceError) as err:
        datamodule(data_dir, max_corrupt_fraction=0.05)
    message = str(err.value)
    assert "3 of 36 CelebA images (8.33%) are unreadable" in message
    assert all(name in message for name in ("000001.jpg", "000003.jpg", "000030.jpg"))
    assert "data.max_corrupt_fraction=0.05" in message


def test_truncated_file_never_crashes_a_worker(data_dir, caplog):
    """A truncated JPEG passes the header check; loading substitutes the next file."""
    truncated = data_dir / "celeba" / "img_align_celeba" / "000004.jpg"
    corrupt(truncated, "truncate")
    dm = datamodule(data_dir, batch_size=6)  # verify=header: not caught up front
    assert "000004.jpg" in names(dm.train_set)
    with caplog.at_level(logging.WARNING):
        batches = list(dm.train_dataloader())
    assert len(batches) == 4 and all(b[0].shape == (6, 3, 64, 64) for b in batches)
    assert any("000004.jpg" in r.getMessage() for r in caplog.records)
    # In worker processes too: the epoch completes.
    dm_workers = datamodule(data_dir, batch_size=6, num_workers=2, persistent_workers=False)
    assert len(list(dm_workers.train_dataloader())) == 4
    # verify=full decodes everything up front and drops the file before training.
    full = datamodule(data_dir, verify="full", max_corrupt_fraction=0.1)
    assert "000004.jpg" not in names(full.train_set)


def test_missing_data_message(tmp_path):
    dm = CelebADataModule(data_dir=str(tmp_path / "nowhere"))  # constructible without data
    with pytest.raises(DataSourceError) as err:
        dm.check_source()
    with pytest.raises(DataSourceError, match="CelebA not found"):
        dm.prepare_data()  # inside Trainer.fit, before any step
    message = str(err.value)
    root = tmp_path / "nowhere" / "celeba"
    assert f"missing under {root}" in message
    for needle in (
        "img_align_celeba/*.jpg",
        "list_eval_partition.txt",
        "img_align_celeba/000001.jpg",
        "list_attr_celeba.txt",
        f"paths.data_dir={tmp_path / 'nowhere'}",
        "paths.data_dir=/dir/containing/celeba",
        "data.download=true",
        CELEBA_URL,
    ):
        assert needle in message, needle


def test_only_the_missing_piece_is_named(data_dir):
    (data_dir / "celeba" / "list_eval_partition.txt").unlink()
    with pytest.raises(DataSourceError, match=r"CelebA not found: list_eval_partition.txt missing"):
        CelebADataModule(data_dir=str(data_dir)).prepare_data()


# --------------------------------------------------------------------------- train.py
def test_train_py_without_celeba_fails_before_training(tmp_path):
    """One clean line, exit code 2, no checkpoint written."""
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "data=celeba",
            f"paths.data_dir={tmp_path}",
            f"paths.log_dir={tmp_path / 'logs'}",
            "logger=none",
            "metrics=none",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Error: CelebA not found" in result.stderr
    assert f"{tmp_path}/celeba/" in result.stderr and "paths.data_dir=" in result.stderr
    assert not list((tmp_path / "logs").rglob("*.ckpt"))


def test_dcgan_trains_on_miniature_celeba(tmp_path, data_dir):
    from gan_lightning.train import run

    cfg = compose_config(
        [
            "model=dcgan",
            "data=celeba",
            f"paths.data_dir={data_dir}",
            "data.batch_size=8",
            "data.num_workers=0",
            "model.generator.base_width=8",
            "model.discriminator.base_width=8",
            "metrics=none",
            *SMOKE,
        ],
        output_dir=tmp_path / "run",
    )
    metrics = run(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/d_loss_epoch"]))
    assert list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    grids = list((tmp_path / "run" / "samples").glob("*.png"))
    assert grids, "the sample grid of a 64x64x3 DCGAN was not written"
