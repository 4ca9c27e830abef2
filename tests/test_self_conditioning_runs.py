"""Self-conditioning as a user runs it: the config group composes into a conditional pair of
nets and an unconditional model, trains on unlabelled image folders (re-clustering on D's
features), and its checkpoint rebuilds through the safe loader and samples by cluster."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.generate import sample_inputs
from gan_lightning.modules.self_conditioning import SelfConditioning
from gan_lightning.runtime.checkpoints import load_module
from gan_lightning.runtime.cli import user_error
from gan_lightning.train import build, run
from tests.conftest import SMOKE, compose_config
from tests.data.miniature import make_image_folder


def test_the_group_builds_conditional_nets_around_an_unconditional_model(tmp_path):
    cfg = compose_config(["model=dcgan", "model/self_conditioning=pixels",
                          "model.self_conditioning.clusters=7", *SMOKE], tmp_path)  # fmt: skip
    _, model, _ = build(cfg)
    assert isinstance(model.self_conditioning, SelfConditioning)
    assert model.generator.num_classes == 7 and model.discriminator.conditioning == "projection"
    assert model.num_classes == 0 and model.num_conditions == 7
    assert cfg.model.self_conditioning.seed == cfg.seed


def test_nets_that_disagree_with_the_clusters_are_refused_before_training(tmp_path):
    cfg = compose_config(["model=dcgan", "model/self_conditioning=pixels",
                          "model.num_classes=5", *SMOKE], tmp_path)  # fmt: skip
    with pytest.raises(Exception) as err:
        build(cfg)
    assert isinstance(user_error(err.value), ConfigError)
    assert "self_conditioning.clusters=20 but the nets are built for num_classes=5" in str(
        user_error(err.value)
    )


@pytest.mark.slow
def test_an_unlabelled_folder_trains_reclusters_and_samples_by_cluster(tmp_path):
    images = tmp_path / "images"
    make_image_folder(images, n=40)
    run_dir = tmp_path / "run"
    overrides = [
        "model=dcgan", "model/self_conditioning=discriminator",
        "model.self_conditioning.clusters=3", "model.self_conditioning.num_images=32",
        "model.self_conditioning.recluster_every=2",
        "model.generator.base_width=8", "model.discriminator.base_width=8",
        "data=image_folder", f"data.path={images}", "data.image_size=8", "data.batch_size=8",
        "data.num_workers=0", "data.val_size=8", *SMOKE, "trainer.max_steps=5", "trainer.max_epochs=-1",
    ]  # fmt: skip
    run(compose_config(overrides, run_dir))
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    assert int(saved["self_conditioning.fits"]) == 3  # before batches 0, 2 and 4
    module, _ = load_module(ckpt)  # the allowlist knows SelfConditioning
    assert module.num_conditions == 3 and module.self_conditioning.fitted
    assert torch.equal(module.self_conditioning.centroids, saved["self_conditioning.centroids"])
    _, labels = sample_inputs(module, 200, seed=0, truncation=None, label=None)
    share = torch.bincount(labels, minlength=3).float() / 200
    assert torch.allclose(share, module.self_conditioning.frequencies.cpu(), atol=0.12)
    _, labels = sample_inputs(module, 4, seed=0, truncation=None, label=2)
    assert labels.tolist() == [2] * 4
    with pytest.raises(ConfigError, match="label=3 is not a cluster of this model"):
        sample_inputs(module, 4, seed=0, truncation=None, label=3)
