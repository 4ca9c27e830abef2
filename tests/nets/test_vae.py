"""VAE encoders/decoders: seed 002's MLP layout, conv shapes at 28x28x1 and 64x64x3, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.nets.vae import (
    ConvDecoder,
    ConvEncoder,
    GaussianEncoder,
    MLPDecoder,
    MLPEncoder,
)


def linear_shapes(net: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, nn.Linear)]


def test_mlp_vae_is_seed_002_figure_12():
    enc = MLPEncoder((1, 28, 28), latent_dim=2, hidden_sizes=[512, 256])
    dec = MLPDecoder(2, (1, 28, 28), hidden_sizes=[256, 512])
    # fc1, fc2, fc31, fc32 | fc4, fc5, fc6
    assert linear_shapes(enc) == [(784, 512), (512, 256), (256, 2), (256, 2)]
    assert linear_shapes(dec) == [(2, 256), (256, 512), (512, 784)]
    total = sum(p.numel() for net in (enc, dec) for p in net.parameters())
    assert total == (785 * 512 + 513 * 256 + 2 * 257 * 2) + (3 * 256 + 257 * 512 + 513 * 784)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in enc.modules())


def test_mlp_encoder_decoder_shapes_and_unsquashed_output():
    torch.manual_seed(0)
    enc = MLPEncoder((1, 28, 28), latent_dim=3, hidden_sizes=[32])
    dec = MLPDecoder(3, (1, 28, 28), hidden_sizes=[32])
    mu, logvar = enc(torch.rand(6, 1, 28, 28))
    assert mu.shape == logvar.shape == (6, 3)
    out = dec(mu)
    assert out.shape == (6, 1, 28, 28)
    assert dec.output_activation_name == "linear"
    # pre-sigmoid values: a large z drives them outside [0, 1]
    big = dec(torch.randn(64, 3) * 100)
    assert big.min() < 0 or big.max() > 1


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_conv_encoder_decoder_shapes(shape):
    enc = ConvEncoder(shape, latent_dim=8, base_width=4)
    dec = ConvDecoder(8, shape, base_width=4)
    assert isinstance(enc, GaussianEncoder)
    mu, logvar = enc(torch.rand(3, *shape))
    assert mu.shape == logvar.shape == (3, 8)
    assert dec(mu).shape == (3, *shape)
    assert dec.latent_dim == enc.latent_dim == 8 and dec.image_shape == enc.image_shape == shape


def test_conv_batch_norm_flag():
    on = ConvEncoder((3, 64, 64), 8, 4, batch_norm=True)
    off = ConvEncoder((3, 64, 64), 8, 4, batch_norm=False)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in on.modules()) == 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in off.modules())
    dec = ConvDecoder(8, (3, 64, 64), 4, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in dec.modules())


def test_conv_nets_reject_unsupported_sizes_with_their_own_config_key():
    with pytest.raises(ConfigError, match=r"model\.encoder\.image_shape.*supported"):
        ConvEncoder((1, 30, 30), 8)
    with pytest.raises(ConfigError, match=r"model\.decoder\.image_shape=\[3, 64, 32\]"):
        ConvDecoder(8, (3, 64, 32))


def test_bad_hyperparameters():
    with pytest.raises(ConfigError, match="latent_dim"):
        MLPEncoder((1, 28, 28), latent_dim=0)
    with pytest.raises(ConfigError, match=r"model\.decoder\.hidden_sizes"):
        MLPDecoder(2, (1, 28, 28), hidden_sizes=[0])
    with pytest.raises(ConfigError, match="base_width"):
        ConvEncoder((1, 28, 28), 2, base_width=0)
