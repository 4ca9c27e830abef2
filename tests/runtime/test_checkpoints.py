"""load_module: rebuild any project model from its checkpoint alone, refuse anything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.checkpoints import load_module
from tests.helpers import TINY, tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoints(mnist_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.getbasetemp() / "tiny_checkpoints"
    return {model: tiny_checkpoint(model, root, mnist_dir) for model in TINY}


@pytest.mark.parametrize("model", sorted(TINY))
def test_rebuilds_the_trained_model_without_data(checkpoints, model, monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_LIGHTNING_DATA_DIR", str(tmp_path / "nowhere"))  # no data needed
    module, config = load_module(checkpoints[model])
    state = torch.load(checkpoints[model], weights_only=True)["state_dict"]
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, state[key])
    assert (
        not module.training
        and config["model"]["_target_"] == module.run_config["model"]["_target_"]
    )
    images = module.sample(4, torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 28, 28)
    low, high = module.pixel_range
    assert images.min() >= low and images.max() <= high


def test_batches_seen_comes_back(checkpoints):
    module, _ = load_module(checkpoints["gan"])
    assert module.batches_seen == 3


def test_missing_path_directory_and_foreign_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_module(tmp_path / "nope.ckpt")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(ConfigError, match="is a directory.*last.ckpt"):
        load_module(tmp_path)
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="not a gan-lightning checkpoint"):
        load_module(tmp_path / "text.ckpt")
    torch.save({"state_dict": {}, "epoch": 1}, tmp_path / "plain.ckpt")  # Lightning, not ours
    with pytest.raises(ConfigError, match="no 'gan_lightning' run config"):
        load_module(tmp_path / "plain.ckpt")


class Payload:
    """Unpickling this would run code; weights_only=True must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_untrusted_pickles_are_refused(tmp_path):
    torch.save(
        {"state_dict": {}, "gan_lightning": {"config": {"model": {}}}, "x": Payload()},
        tmp_path / "evil.ckpt",
    )
    with pytest.raises(ConfigError, match="not loadable safely"):
        load_module(tmp_path / "evil.ckpt")
