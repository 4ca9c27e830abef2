"""The shared building blocks, and one way for every net to name its config key in errors."""

from __future__ import annotations

import pytest
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.nets import layers
from gan_lightning.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_lightning.nets.mlp import MLPDiscriminator, MLPGenerator
from gan_lightning.nets.vae import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

MNIST = (1, 28, 28)


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: MLPGenerator(8, MNIST, hidden_sizes=[0]), "model.generator.hidden_sizes"),
        (lambda: MLPDiscriminator(MNIST, dropout=1.0), "model.discriminator.dropout"),
        (lambda: MLPEncoder(MNIST, 2, hidden_sizes=[-1]), "model.encoder.hidden_sizes"),
        (lambda: MLPDecoder(2, MNIST, hidden_sizes=[0]), "model.decoder.hidden_sizes"),
        (lambda: DCGANGenerator(8, MNIST, base_width=0), "model.generator.base_width"),
        (lambda: DCGANDiscriminator(MNIST, base_width=0), "model.discriminator.base_width"),
        (lambda: ConvEncoder(MNIST, 2, base_width=0), "model.encoder.base_width"),
        (lambda: ConvDecoder(2, MNIST, base_width=0), "model.decoder.base_width"),
        (lambda: ConvDecoder(2, (1, 30, 30)), "model.decoder.image_shape"),
        (lambda: ConvEncoder((1, 30, 30), 2), "model.encoder.image_shape"),
        (lambda: DCGANDiscriminator(MNIST, init="xavier"), "model.discriminator.init"),
    ],
)
def test_every_net_names_its_own_config_key(build, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        build()


def test_mlp_stack_normalises_every_hidden_layer_but_the_first():
    stack, width = layers.mlp_stack(10, [4, 5, 6], "leaky_relu", 0.2, True, 0.5)
    kinds = [type(m).__name__ for m in stack]
    assert kinds == [
        "Linear", "LeakyReLU", "Dropout",
        "Linear", "BatchNorm1d", "LeakyReLU", "Dropout",
        "Linear", "BatchNorm1d", "LeakyReLU", "Dropout",
    ]  # fmt: skip
    assert width == 6 and isinstance(stack[0], nn.Linear) and stack[0].in_features == 10
