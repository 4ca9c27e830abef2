"""Conditional nets (label input of G; projection and AC-GAN heads of D) and spectral norm."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_lightning.nets.layers import apply_spectral_norm
from gan_lightning.nets.mlp import MLPDiscriminator, MLPGenerator

MNIST = (1, 28, 28)


@pytest.mark.parametrize("make", [MLPGenerator, DCGANGenerator])
def test_conditional_generator_uses_the_label(make):
    torch.manual_seed(0)
    g = make(8, MNIST, num_classes=10).eval()
    z = torch.randn(2, 8)
    same_z = z[:1].expand(2, -1)
    out = g(same_z, torch.tensor([3, 7]))
    assert out.shape == (2, 1, 28, 28)
    assert not torch.allclose(out[0], out[1])  # same z, other class: another image
    with pytest.raises(ValueError, match="needs labels"):
        g(z)
    with pytest.raises(ValueError, match="takes no labels"):
        make(8, MNIST)(z, torch.tensor([1, 2]))


@pytest.mark.parametrize("make", [MLPDiscriminator, DCGANDiscriminator])
def test_projection_and_acgan_heads(make):
    torch.manual_seed(0)
    x = torch.rand(4, *MNIST) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3])
    projection = make(MNIST, num_classes=10, conditioning="projection").eval()
    logits = projection(x, labels)
    assert logits.shape == (4,)
    # The label changes the score of the same image (the projection term).
    assert not torch.allclose(logits, projection(x, (labels + 1) % 10))
    acgan = make(MNIST, num_classes=10, conditioning="acgan").eval()
    h = acgan.extract(x)
    assert acgan.head(h).shape == (4,) and acgan.classify(h).shape == (4, 10)
    torch.testing.assert_close(acgan(x), acgan.head(h))  # labels do not enter acgan's logit
    plain = make(MNIST)
    with pytest.raises(ValueError, match="acgan"):
        plain.classify(plain.extract(x))


def test_conditioning_checks_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.discriminator\.conditioning='cgan'"):
        MLPDiscriminator(MNIST, num_classes=10, conditioning="cgan")
    with pytest.raises(ConfigError, match="num_classes"):
        DCGANDiscriminator(MNIST, num_classes=0, conditioning="projection")
    with pytest.raises(ConfigError, match=r"model\.generator\.latent_dim=0"):
        MLPGenerator(0, MNIST)


@pytest.mark.parametrize(
    "net",
    [
        lambda: MLPDiscriminator(MNIST, hidden_sizes=[64, 32]),
        lambda: DCGANDiscriminator(MNIST, base_width=8, batch_norm=False),
        lambda: DCGANGenerator(8, MNIST, base_width=8),
    ],
)
def test_spectral_norm_bounds_every_weight_layer(net):
    torch.manual_seed(0)
    module = apply_spectral_norm(net())
    layers = [
        m for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d,
                                                      torch.nn.ConvTranspose2d))
    ]  # fmt: skip
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    module.train()
    probe = torch.randn(2, 8) if isinstance(module, DCGANGenerator) else torch.randn(2, *MNIST)
    for _ in range(30):  # power iterations converge in training-mode forwards
        module(probe)
    module.eval()
    for m in layers:
        weight = m.weight.detach()
        matrix = weight.transpose(0, 1) if isinstance(m, torch.nn.ConvTranspose2d) else weight
        sigma = torch.linalg.matrix_norm(matrix.flatten(1), ord=2)
        assert sigma <= 1.0 + 1e-2, (type(m).__name__, float(sigma))
        assert sigma >= 0.5  # normalised, not collapsed
