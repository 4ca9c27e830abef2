"""The net/DataModule/module contract (gan_lightning/contracts.py, docs/contract.md): a plain
forward-only discriminator trains, and every violation is one clear ConfigError before the
first training step."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from gan_lightning.contracts import (
    Discriminator,
    FeatureDiscriminator,
    Generator,
    ImageDataModule,
    SamplingModule,
    check_module,
)
from gan_lightning.errors import ConfigError
from gan_lightning.modules.gan import GAN
from gan_lightning.nets.mlp import MLPDiscriminator, MLPGenerator
from tests.helpers import tensor_loader
from tests.modules.test_gan_options import trainer

SHAPE = (1, 4, 4)
adam = functools.partial(torch.optim.Adam, lr=1e-3)


class TutorialD(nn.Module):
    """A discriminator as in any PyTorch tutorial: forward(x) -> (N, 1) logits, nothing else."""

    def __init__(self, in_features: int = 16, out: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, 8), nn.LeakyReLU(0.2), nn.Linear(8, out)
        )
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(x)


class LabelledD(TutorialD):
    """Conditional in its own forward (a projection of a label embedding)."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(3, 16)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return super().forward(x).squeeze(1) + (self.embed(labels) * x.flatten(1)).sum(1)


class Data(pl.LightningDataModule):
    """The smallest DataModule of the contract: image_shape, pixel_range, a train loader."""

    def __init__(self, image_shape=SHAPE, num_classes: int = 0) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.pixel_range = (-1.0, 1.0)
        self.num_classes = num_classes

    def train_dataloader(self):
        loader = tensor_loader()
        if self.num_classes:
            loader.dataset.labels = torch.arange(len(loader.dataset)) % self.num_classes
        return loader


def gan(discriminator: nn.Module, num_classes: int = 0, **kwargs) -> GAN:
    generator = MLPGenerator(4, SHAPE, hidden_sizes=[8], num_classes=num_classes)
    return GAN(generator, discriminator, adam, adam, num_classes=num_classes, **kwargs)


def fit(model: GAN, data: pl.LightningDataModule, batches: int = 2) -> pl.Trainer:
    t = trainer(model, batches)
    torch.manual_seed(0)
    t.fit(model, datamodule=data)
    return t


def test_a_forward_only_discriminator_trains():
    d = TutorialD()
    model = gan(d)
    before = [p.detach().clone() for p in d.parameters()]
    trainer = fit(model, Data())
    assert model.batches_seen == 2 and d.calls >= 2 * 3  # real + fake in D, fake in G
    assert all(not torch.equal(a, b) for a, b in zip(before, d.parameters(), strict=True))
    assert torch.isfinite(trainer.callback_metrics["train/d_loss_epoch"])


def test_a_conditional_forward_only_discriminator_gets_the_labels():
    model = gan(LabelledD(), num_classes=3)
    fit(model, Data(num_classes=3))
    assert model.batches_seen == 2


def test_the_projects_nets_give_the_same_logits_through_forward():
    """forward is head(extract(x)): the built-in nets are unchanged by the switch to forward."""
    d = MLPDiscriminator(SHAPE, hidden_sizes=[8])
    x = torch.randn(5, *SHAPE)
    torch.testing.assert_close(d(x), d.head(d.extract(x)))


def test_protocols_describe_the_nets_and_data():
    assert isinstance(MLPGenerator(4, SHAPE, hidden_sizes=[8]), Generator)
    assert isinstance(TutorialD(), Discriminator)
    assert not isinstance(TutorialD(), FeatureDiscriminator)
    assert isinstance(MLPDiscriminator(SHAPE, hidden_sizes=[8]), FeatureDiscriminator)
    assert isinstance(Data(), ImageDataModule)
    assert isinstance(gan(TutorialD()), SamplingModule)


class NoLatent(nn.Module):
    def forward(self, z):
        return z


class WrongShapeG(MLPGenerator):
    def forward(self, z, labels=None):
        return super().forward(z, labels).flatten(1)  # (N, 16), not (N, 1, 4, 4)


class Stopped(Exception):
    pass


def no_step(model: GAN) -> GAN:
    """Any training step would fail the test: the contract must be checked before."""

    def step(*args, **kwargs):
        raise Stopped("a training step ran before the contract check")

    model.training_step = step
    return model


@pytest.mark.parametrize(
    ("build", "data", "message"),
    [
        (
            lambda: gan(TutorialD(out=2)),
            Data(),
            r"returned \[2, 2\] for 2 images.*\(2,\) or \(2, 1\)",
        ),
        (
            lambda: GAN(WrongShapeG(4, SHAPE, hidden_sizes=[8]), TutorialD(), adam, adam),
            Data(),
            r"returned \[2, 16\] for 2 latents, but the data are images of shape \[1, 4, 4\]",
        ),
        (lambda: gan(TutorialD()), Data(image_shape=(1, 8, 8)), r"images of shape \[1, 8, 8\]"),
    ],
)
def test_shape_violations_stop_before_the_first_step(build, data, message):
    model = no_step(build())
    with pytest.raises(ConfigError, match=message):
        fit(model, data)
    assert model.batches_seen == 0


def test_a_datamodule_without_image_shape_is_named():
    class Bare(pl.LightningDataModule):
        def train_dataloader(self):
            return tensor_loader()

    with pytest.raises(ConfigError, match="Bare has no image_shape or pixel_range"):
        fit(no_step(gan(TutorialD())), Bare())


def test_construction_violations_are_one_line():
    with pytest.raises(ConfigError, match=r"NoLatent\) has latent_dim=None"):
        GAN(NoLatent(), TutorialD(), adam, adam)
    with pytest.raises(ConfigError, match="TutorialD.forward takes no labels"):
        GAN(
            MLPGenerator(4, SHAPE, hidden_sizes=[8], num_classes=3),
            _with_classes(TutorialD(), 3),
            adam,
            adam,
            num_classes=3,
        )
    with pytest.raises(ConfigError, match="acgan but TutorialD has no extract/head/classify"):
        d = _with_classes(TutorialD(), 3)
        d.conditioning = "acgan"
        GAN(
            MLPGenerator(4, SHAPE, hidden_sizes=[8], num_classes=3),
            d,
            adam,
            adam,
            num_classes=3,
            conditioning="acgan",
        )
    with pytest.raises(ConfigError, match="not a torch.nn.Module"):
        GAN(MLPGenerator(4, SHAPE, hidden_sizes=[8]), lambda x: x, adam, adam)


def _with_classes(net: nn.Module, n: int) -> nn.Module:
    net.num_classes = n
    return net


def test_a_module_without_the_sampling_contract_is_named():
    class Bare(pl.LightningModule):
        latent_dim = 4

    with pytest.raises(ConfigError, match="Bare has no pixel_range, num_classes, prior"):
        check_module(Bare())
    check_module(gan(TutorialD()))


def test_the_train_cli_reports_a_violation_in_one_line(capsys, tmp_path):
    from gan_lightning.train import main

    code = main(
        [
            "data=gaussian",
            "model.latent_dim=1",
            "model.generator.output_activation=linear",
            "~model.discriminator",
            "+model.discriminator={_target_:tests.test_contracts.TutorialD,in_features:1,out:2}",
            "trainer.max_steps=2",
            "trainer.accelerator=cpu",
            "logger=none",
            "metrics=none",
            f"hydra.run.dir={tmp_path}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "Error: model.discriminator (TutorialD) returned [2, 2] for 2 images" in err
