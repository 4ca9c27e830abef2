"""DCGAN nets: shapes follow image_shape, exact parameter counts, BatchNorm flags, size errors."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gan_lightning.errors import ConfigError
from gan_lightning.modules.gan import GAN
from gan_lightning.nets.dcgan import DCGANDiscriminator, DCGANGenerator, conv_levels


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def count(net: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


@pytest.mark.parametrize(
    ("shape", "levels"),
    [((1, 28, 28), (7, 2)), ((3, 32, 32), (4, 3)), ((3, 64, 64), (4, 4)), ((1, 8, 8), (4, 1))],
)
def test_shapes_follow_image_shape(shape, levels):
    assert conv_levels(shape, "generator") == levels
    g = DCGANGenerator(latent_dim=16, image_shape=shape, base_width=8)
    d = DCGANDiscriminator(image_shape=shape, base_width=8)
    images = g(torch.randn(5, 16))
    assert images.shape == (5, *shape)
    assert d(images).shape == (5,)
    assert g.latent_dim == 16 and g.image_shape == shape
    # one stride-2 (de)convolution per doubling from s0 to the image side
    assert count(g, nn.ConvTranspose2d) == levels[1] + 1
    assert count(d, nn.Conv2d) == levels[1] + 1


def test_parameter_counts_64x64_match_radford_dcgan():
    """nz=100, ngf=ndf=64 at 64x64x3: the PyTorch DCGAN example's 3,576,704 (G) and 2,765,568
    (D) weights, plus the biases this project keeps where no BatchNorm follows (G's output conv:
    3; D's first conv: 64 and its output conv: 1)."""
    g = DCGANGenerator(100, (3, 64, 64), base_width=64)
    d = DCGANDiscriminator((3, 64, 64), base_width=64)
    assert n_params(g) == 3_576_704 + 3
    assert n_params(d) == 2_765_568 + 64 + 1


def test_parameter_counts_28x28():
    g = DCGANGenerator(100, (1, 28, 28), base_width=64)
    d = DCGANDiscriminator((1, 28, 28), base_width=64)
    # G: ConvT 100->128 (7x7), BN, ConvT 128->64 (4x4), BN, ConvT 64->1 (4x4) + bias
    assert n_params(g) == 100 * 128 * 49 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 16 + 1
    # D: Conv 1->64 + bias, Conv 64->128, BN, Conv 128->1 (7x7) + bias
    assert n_params(d) == 16 * 64 + 64 + 64 * 128 * 16 + 2 * 128 + 128 * 49 + 1


def test_batch_norm_flags_remove_batchnorm_layers():
    shape = (3, 32, 32)
    g_bn, g_no = (
        DCGANGenerator(8, shape, 8, batch_norm=True),
        DCGANGenerator(8, shape, 8, batch_norm=False),
    )
    d_bn = DCGANDiscriminator(shape, 8, batch_norm=True)
    d_no = DCGANDiscriminator(shape, 8, batch_norm=False)
    assert count(g_bn, nn.BatchNorm2d) == 3  # every hidden map (4, 8, 16)
    assert count(d_bn, nn.BatchNorm2d) == 2  # every conv but the first (sees raw pixels)
    assert count(g_no, nn.BatchNorm2d) == 0 and count(d_no, nn.BatchNorm2d) == 0
    # without BatchNorm the convolutions get their biases back
    assert all(m.bias is not None for m in g_no.modules() if isinstance(m, nn.ConvTranspose2d))
    assert all(m.bias is not None for m in d_no.modules() if isinstance(m, nn.Conv2d))
    # ... and the same shapes come out
    assert g_no(torch.randn(2, 8)).shape == g_bn(torch.randn(2, 8)).shape


def test_dcgan_init_and_options():
    torch.manual_seed(0)
    g = DCGANGenerator(100, (3, 64, 64), 64, activation="leaky_relu", negative_slope=0.1)
    conv = g.net[1]
    assert abs(conv.weight.std().item() - 0.02) < 0.002 and abs(conv.weight.mean().item()) < 0.002
    bn = g.net[2]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and bn.weight.std().item() > 0
    assert bn.bias.abs().sum().item() == 0
    assert any(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.1 for m in g.modules())
    default = DCGANGenerator(100, (3, 64, 64), 64, init="default")
    assert abs(default.net[1].weight.std().item() - 0.02) > 0.005  # PyTorch's own init
    d = DCGANDiscriminator((1, 28, 28), 8, dropout=0.3, negative_slope=0.3)
    assert count(d, nn.Dropout) == 2
    assert all(m.negative_slope == 0.3 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    with pytest.raises(ConfigError, match="init"):
        DCGANGenerator(8, (1, 8, 8), init="xavier")
    with pytest.raises(ConfigError, match="dropout"):
        DCGANDiscriminator((1, 8, 8), dropout=1.0)


@pytest.mark.parametrize(("activation", "low", "high"), [("tanh", -1, 1), ("sigmoid", 0, 1)])
def test_output_activation(activation, low, high):
    g = DCGANGenerator(8, (1, 28, 28), 4, output_activation=activation)
    assert g.output_activation_name == activation
    out = g(torch.randn(16, 8) * 50)
    assert out.min() >= low and out.max() <= high


def test_discriminator_returns_logits_not_probabilities():
    torch.manual_seed(0)
    d = DCGANDiscriminator((1, 28, 28), 8, init="default")
    logits = d(torch.randn(64, 1, 28, 28) * 3)
    assert logits.shape == (64,)
    assert (logits < 0).any() and (logits > 0).any()  # a sigmoid would keep them in (0, 1)


@pytest.mark.parametrize(
    "shape", [(1, 30, 30), (3, 64, 32), (3, 48, 48), (1, 4, 4), (1, 14, 14), (28, 28)]
)
def test_unsupported_sizes_raise_config_error_naming_supported_sizes(shape):
    for build in (lambda: DCGANGenerator(8, shape), lambda: DCGANDiscriminator(shape)):
        with pytest.raises(ConfigError) as err:
            build()
        message = str(err.value)
        assert str(list(shape)) in message
        if len(shape) == 3:
            assert "28" in message and "4 * 2^k" in message and "64" in message


def test_trained_by_the_one_gan_module():
    """The DCGAN nets plug into the same GAN module as the MLP nets; one fit step changes both."""
    torch.manual_seed(0)
    shape = (1, 8, 8)
    g, d = DCGANGenerator(4, shape, 4), DCGANDiscriminator(shape, 4)
    model = GAN(
        g,
        d,
        optimizer_g=lambda params: torch.optim.Adam(params, 1e-3),
        optimizer_d=lambda params: torch.optim.Adam(params, 1e-3),
    )
    before = [p.detach().clone() for p in (g.net[1].weight, d.out.weight)]
    loader = DataLoader(TensorDataset(torch.rand(16, *shape) * 2 - 1), batch_size=8)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model, loader)
    assert model.batches_seen == 2
    after = [g.net[1].weight, d.out.weight]
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert model.sample(3).shape == (3, *shape)


def test_gan_rejects_sigmoid_generator_on_signed_pixels():
    shape = (1, 8, 8)
    with pytest.raises(ConfigError, match="output activation"):
        GAN(
            DCGANGenerator(4, shape, 4, output_activation="sigmoid"),
            DCGANDiscriminator(shape, 4),
            optimizer_g=torch.optim.Adam,
            optimizer_d=torch.optim.Adam,
            pixel_range=(-1, 1),
        )
