"""Self-conditioning: k-means, the matching of re-clustered ids, the PCA, sampling by the
clusters' frequencies, the state in checkpoints, and the GAN trained on cluster ids (no labels
read from the data) through its own DataModule."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from gan_lightning.callbacks.samples import SampleGrid
from gan_lightning.data.loaders import passthrough_collate
from gan_lightning.data.tensors import TensorImageDataset
from gan_lightning.errors import ConfigError
from gan_lightning.metrics.images import generated_batches
from gan_lightning.modules.gan import GAN
from gan_lightning.modules.self_conditioning import (
    SelfConditioning,
    kmeans,
    match_clusters,
    pca,
)
from gan_lightning.nets.mlp import MLPDiscriminator, MLPGenerator
from tests.helpers import fit_tiny

SHAPE = (1, 4, 4)


def blobs(k: int = 3, per: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` tight, far-apart blobs in 2-D: points (k*per, 2) and their blob (k*per,)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])[:k]
    truth = torch.arange(k).repeat_interleave(per)
    return centers[truth] + 0.1 * torch.randn(k * per, 2, generator=g), truth


def test_kmeans_finds_separated_blobs_and_their_centers():
    points, truth = blobs()
    centers, ids = kmeans(points, 3, torch.Generator().manual_seed(1))
    for blob in range(3):  # one id per blob, whatever the numbering
        assert ids[truth == blob].unique().numel() == 1
    assert ids.unique().numel() == 3
    for blob in range(3):
        mean = points[truth == blob].mean(dim=0)
        assert torch.allclose(centers[ids[truth == blob][0]], mean, atol=1e-5)


def test_kmeans_keeps_every_cluster_in_use():
    points = torch.cat([torch.zeros(30, 2), torch.tensor([[5.0, 5.0], [5.1, 5.0], [9.0, 9.0]])])
    _, ids = kmeans(points, 4, torch.Generator().manual_seed(0))
    assert ids.unique().numel() == 4  # no empty cluster, even with 30 identical points


def test_kmeans_refuses_fewer_points_than_clusters():
    with pytest.raises(ConfigError, match="cannot make 5 clusters"):
        kmeans(torch.zeros(3, 2), 5, torch.Generator())


def test_matching_gives_renumbered_clusters_their_old_ids():
    old = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    new = torch.tensor([2, 2, 1, 0, 0, 1, 1, 1])  # 0->2, 1->0, 2->1, one image moved
    perm = match_clusters(old, new, 3)
    assert perm.tolist() == [1, 2, 0]  # new 0 is old 1, new 1 is old 2, new 2 is old 0
    assert (perm[new] == old).sum() == 7


def test_pca_finds_the_main_direction():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(200, generator=g)
    points = torch.stack([t, 2 * t, 0.01 * torch.randn(200, generator=g)], dim=1) + 5
    mean, basis = pca(points, 1)
    assert torch.allclose(mean, points.mean(dim=0))
    direction = torch.tensor([1.0, 2.0, 0.0]) / 5**0.5
    assert abs(float(basis[:, 0] @ direction)) > 0.999


def test_sampling_follows_the_frequencies_and_the_seed():
    sc = SelfConditioning(clusters=3)
    sc.frequencies = torch.tensor([0.7, 0.2, 0.1])
    draw = sc.sample(20000, torch.Generator().manual_seed(3), "cpu")
    share = torch.bincount(draw, minlength=3).float() / 20000
    assert torch.allclose(share, sc.frequencies, atol=0.02)
    assert torch.equal(draw, sc.sample(20000, torch.Generator().manual_seed(3), "cpu"))


def test_fit_then_a_refit_keeps_ids_and_the_state_loads_into_a_fresh_module():
    points, truth = blobs(k=4, per=10)
    images = torch.cat([points, torch.zeros(40, 14)], dim=1).reshape(40, *SHAPE)
    sc = SelfConditioning(clusters=4, features="discriminator", num_images=40, recluster_every=5)
    extract = functools.partial(torch.flatten, start_dim=1)
    sc.fit(images, extract)
    first = sc.members.clone()
    logs = sc.fit(images * 2, extract)  # other features, same partition: the same ids
    assert torch.equal(sc.members, first) and logs["self_conditioning/kept"] == 1.0
    assert torch.equal(sc.assign(extract(images[:4] * 2)), first[:4])
    assert int(sc.fits) == 2 and torch.allclose(sc.frequencies, torch.full((4,), 0.25))
    fresh = SelfConditioning(clusters=4, features="discriminator", num_images=40, recluster_every=5)
    fresh.load_state_dict(sc.state_dict())  # (k, 0) buffers take the saved shapes
    assert fresh.fitted and torch.equal(fresh.centroids, sc.centroids)
    assert torch.equal(fresh.assign(extract(images * 2)), sc.members)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": "inception"}, "features='inception' is not known"),
        ({"clusters": 1}, "clusters=1 must be >= 2"),
        ({"num_images": 5, "clusters": 10}, "num_images=5 < clusters=10"),
        ({"recluster_every": 100}, "set features=discriminator or recluster_every=0"),
    ],
)
def test_bad_settings_are_refused_with_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SelfConditioning(**kwargs)


def self_conditioned_gan(clusters: int = 3, features: str = "pixels", **sc_kwargs) -> GAN:
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    return GAN(
        generator=MLPGenerator(latent_dim=4, image_shape=SHAPE, hidden_sizes=[8], num_classes=clusters),
        discriminator=MLPDiscriminator(
            image_shape=SHAPE, hidden_sizes=[8], num_classes=clusters, conditioning="projection"
        ),
        optimizer_g=adam,
        optimizer_d=adam,
        num_classes=clusters,
        conditioning="projection",
        self_conditioning=SelfConditioning(
            clusters=clusters, features=features, dims=4, num_images=64, **sc_kwargs
        ),
    )  # fmt: skip


class ThreeModes(pl.LightningDataModule):
    """Unlabelled 4x4 images of three kinds (a bright top, left or corner), 2:1:1; the batches
    carry labels of 0 that a self-conditioned GAN must never read."""

    image_shape, pixel_range, num_classes = SHAPE, (-1.0, 1.0), 0

    def __init__(self) -> None:
        super().__init__()
        images = -torch.ones(64, *SHAPE)
        images[:32, :, 0, :] = 1.0
        images[32:48, :, :, 0] = 1.0
        images[48:, :, 3, 3] = 1.0
        self.train_set = TensorImageDataset(images, torch.zeros(64, dtype=torch.long))

    def loader(self, dataset, train: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=4, shuffle=train, drop_last=train,
                          collate_fn=passthrough_collate)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_set, train=True)


def fit(model: GAN, batches: int) -> pl.Trainer:
    return fit_tiny(model, batches, datamodule=ThreeModes())


@pytest.mark.parametrize("features", ["pixels", "discriminator"])
def test_a_self_conditioned_gan_trains_on_its_clusters_and_samples_them(features):
    extra = {"recluster_every": 4} if features == "discriminator" else {}
    model = fit(self_conditioned_gan(features=features, **extra), 10).lightning_module
    sc = model.self_conditioning
    assert model.num_classes == 0 and model.num_conditions == 3  # unconditional outside
    assert int(sc.fits) == (3 if features == "discriminator" else 1)  # batches 0, 4, 8
    if features == "pixels":  # three clear modes: found, with their 2:1:1 shares
        assert sorted(sc.frequencies.tolist()) == pytest.approx([0.25, 0.25, 0.5])
    labels = model.sample_labels(1000, torch.Generator().manual_seed(0), device="cpu")
    assert labels.min() >= 0 and labels.max() < 3
    images = model.generate(model.sample_latent(5))  # no labels: drawn by frequency
    assert images.shape == (5, *SHAPE)
    state = model.state_dict()
    assert {"self_conditioning.centroids", "self_conditioning.frequencies"} <= state.keys()


def test_metrics_sample_clusters_by_frequency_and_pictures_show_one_row_per_cluster():
    model = fit(self_conditioned_gan(), 2).lightning_module
    model.self_conditioning.frequencies = torch.tensor([0.0, 1.0, 0.0])
    [(images, labels)] = list(generated_batches(model, 8, seed=0, batch_size=8))
    assert images.shape == (8, *SHAPE) and labels.tolist() == [1] * 8
    grid = SampleGrid(num_samples=9, padding=0).render(model)
    assert grid.shape == (3, 3 * 4, 3 * 4)  # 3 rows (clusters) of 3 samples of 4x4


def test_nets_built_for_other_classes_are_refused():
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    with pytest.raises(ConfigError, match="self_conditioning.clusters=5 but the nets"):
        GAN(
            generator=MLPGenerator(latent_dim=4, image_shape=SHAPE, hidden_sizes=[8], num_classes=3),
            discriminator=MLPDiscriminator(
                image_shape=SHAPE, hidden_sizes=[8], num_classes=3, conditioning="projection"
            ),
            optimizer_g=adam,
            optimizer_d=adam,
            num_classes=3,
            conditioning="projection",
            self_conditioning=SelfConditioning(clusters=5),
        )  # fmt: skip


def test_without_a_datamodule_the_clustering_says_what_it_needs():
    model = self_conditioned_gan()
    trainer = pl.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    loader = ThreeModes().train_dataloader()
    with pytest.raises(ConfigError, match="clusters the training images of a DataModule"):
        trainer.fit(model, train_dataloaders=loader)
