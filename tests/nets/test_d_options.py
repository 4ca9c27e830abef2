"""The discriminator options aimed at coverage: minibatch standard deviation (Karras et al.
2018) and packing (PacGAN, Lin et al. 2018), in both discriminators, their layer's math, the
R1 penalty of a packed D, and both options through the Hydra config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_lightning.contracts import probe_nets
from gan_lightning.errors import ConfigError
from gan_lightning.losses import r1_penalty
from gan_lightning.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_lightning.nets.layers import MinibatchStdDev
from gan_lightning.nets.mlp import MLPDiscriminator
from gan_lightning.runtime.cli import user_error
from gan_lightning.train import run
from tests.conftest import SMOKE, compose_config

MNIST = (1, 28, 28)
CELEBA = (3, 64, 64)


def dcgan(shape=MNIST, **kwargs) -> DCGANDiscriminator:
    return DCGANDiscriminator(shape, base_width=8, **kwargs)


def mlp(shape=MNIST, **kwargs) -> MLPDiscriminator:
    return MLPDiscriminator(shape, hidden_sizes=[16, 8], **kwargs)


NETS = {"dcgan": dcgan, "mlp": mlp}


# --------------------------------------------------------------------------- the layer
def test_minibatch_std_hand_computed_values():
    # One group of 4: feature a = [0, 2, 0, 2] has std 1, feature b = [1, 1, 1, 1] std 0
    # (sqrt(1e-8) = 1e-4 with the epsilon); their mean is (1 + 1e-4) / 2 for every image.
    x = torch.tensor([[0.0, 1.0], [2.0, 1.0], [0.0, 1.0], [2.0, 1.0]])
    out = MinibatchStdDev(4)(x)
    assert out.shape == (4, 3)
    torch.testing.assert_close(out[:, :2], x)  # the features pass through unchanged
    torch.testing.assert_close(out[:, 2], torch.full((4,), (1.0 + 1e-4) / 2))
    # Groups of 2, strided as in ProGAN/StyleGAN2: images {0, 2} and {1, 3}.
    x = torch.tensor([[1.0], [3.0], [0.0], [0.0]])
    out = MinibatchStdDev(2)(x)
    # {1, 0}: std 0.5; {3, 0}: std 1.5 (population std, + 1e-8 in the variance)
    expected = torch.tensor([0.5, 1.5, 0.5, 1.5])
    torch.testing.assert_close(out[:, 1], expected, rtol=0, atol=1e-6)


def test_minibatch_std_on_feature_maps_is_a_constant_extra_channel():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 5)
    out = MinibatchStdDev(4)(x)
    assert out.shape == (8, 4, 5, 5)
    torch.testing.assert_close(out[:, :3], x)
    extra = out[:, 3]
    assert torch.all(extra == extra[:, :1, :1])  # constant over the map
    # Image i is in group i % 2; each group's value is the mean feature std over its 4 images.
    for group in range(2):
        members = x[group::2]
        want = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(extra[group::2, 0, 0], want.expand(4))


def test_a_batch_of_identical_images_gets_a_zero_stddev_feature():
    x = torch.randn(1, 2, 3, 3).expand(8, 2, 3, 3)
    feature = MinibatchStdDev(4)(x)[:, 2]
    torch.testing.assert_close(feature, torch.full_like(feature, 1e-4))  # sqrt(0 + 1e-8)


@pytest.mark.parametrize(
    ("n", "group"), [(8, 4), (4, 4), (2, 2), (3, 3), (6, 3), (10, 2), (7, 1), (1, 1)]
)
def test_group_size_is_the_largest_divisor_of_the_batch_up_to_the_setting(n, group):
    layer = MinibatchStdDev(4)
    assert layer.group_for(n) == group
    assert layer(torch.randn(n, 5)).shape == (n, 6)  # any batch size works


def test_minibatch_std_gradient_is_finite_for_identical_images():
    x = torch.ones(4, 3, requires_grad=True)
    MinibatchStdDev(4)(x).sum().backward()
    assert torch.isfinite(x.grad).all()


# --------------------------------------------------------------------------- the nets
@pytest.mark.parametrize("shape", [MNIST, CELEBA])
@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize(
    "options", [{"minibatch_std": 4}, {"pack": 2}, {"minibatch_std": 4, "pack": 2}]
)
def test_shapes_and_layer_sizes_with_the_options(name, shape, options):
    torch.manual_seed(0)
    plain, net = NETS[name](shape), NETS[name](shape, **options)
    x = torch.randn(8, *shape)
    assert net(x).shape == (8,)
    m, extra = options.get("pack", 1), int("minibatch_std" in options)
    if name == "dcgan":
        first, last = net.features[0], net.out
        assert first.in_channels == m * shape[0]
        assert last.in_channels == plain.out.in_channels + extra
    else:
        first, last = net.hidden[0], net.out
        assert first.in_features == m * shape[0] * shape[1] * shape[2]
        assert last.in_features == plain.out.in_features + extra
    assert net.extract(x).shape[0] == 8 // m  # one feature vector per pack


@pytest.mark.parametrize("name", sorted(NETS))
def test_options_off_build_the_same_net(name):
    a, b = NETS[name](), NETS[name](minibatch_std=0, pack=1)
    assert [(k, v.shape) for k, v in a.state_dict().items()] == [
        (k, v.shape) for k, v in b.state_dict().items()
    ]
    assert isinstance(b.mbstd, nn.Identity)


@pytest.mark.parametrize("name", sorted(NETS))
def test_a_packed_d_gives_each_pack_one_logit_repeated(name):
    torch.manual_seed(0)
    net = NETS[name](pack=2, batch_norm=False).eval()
    x = torch.randn(6, *MNIST)
    logits = net(x)
    torch.testing.assert_close(logits[0::2], logits[1::2])  # each pack's logit, twice
    changed = x.clone()
    changed[1] += 1.0  # the second image of the first pack
    after = net(changed)
    assert not torch.allclose(after[:2], logits[:2])  # the pack's decision changes ...
    torch.testing.assert_close(after[2:], logits[2:])  # ... and no other pack's
    swapped = x[[1, 0, 2, 3, 4, 5]]  # a pack is ordered: its images are channels
    assert not torch.allclose(net(swapped)[:2], logits[:2])


@pytest.mark.parametrize("name", sorted(NETS))
def test_minibatch_std_makes_the_logit_depend_on_the_other_images(name):
    torch.manual_seed(0)
    net = NETS[name](minibatch_std=4, batch_norm=False).eval()
    x = torch.randn(4, *MNIST)
    changed = x.clone()
    changed[3] *= 3.0
    assert not torch.allclose(net(changed)[0], net(x)[0])
    plain = NETS[name](batch_norm=False).eval()
    torch.testing.assert_close(plain(changed)[0], plain(x)[0])


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_heads_read_the_per_image_features_without_the_stddev_channel(name, conditioning):
    torch.manual_seed(0)
    kwargs = {"num_classes": 10, "conditioning": conditioning}
    plain, net = NETS[name](**kwargs).eval(), NETS[name](minibatch_std=4, **kwargs).eval()
    x, y = torch.randn(4, *MNIST), torch.arange(4)
    h = net.extract(x)
    assert h.shape == plain.extract(x).shape  # no extra channel in the features
    torch.testing.assert_close(net(x, y), net.head(h, y))  # forward == head(extract)
    if conditioning == "acgan":
        assert net.classify(h).shape == (4, 10)
        assert net.heads.classifier.in_features == plain.heads.classifier.in_features
    else:
        assert net.heads.embedding.weight.shape == plain.heads.embedding.weight.shape


@pytest.mark.parametrize("name", sorted(NETS))
def test_spectral_norm_covers_every_weight_layer_with_both_options(name):
    net = NETS[name](minibatch_std=4, pack=2, spectral_norm=True)
    weighted = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert weighted and all(hasattr(m, "parametrizations") for m in weighted)
    assert not list(net.mbstd.parameters())  # the stddev layer has no weights
    net.train()
    assert net(torch.randn(4, *MNIST)).shape == (4,)


@pytest.mark.parametrize("name", sorted(NETS))
def test_batch_norm_and_minibatch_std_together(name):
    net = NETS[name](minibatch_std=4, batch_norm=True).train()
    assert torch.isfinite(net(torch.randn(8, *MNIST))).all()


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"minibatch_std": -1}, ["model.discriminator.minibatch_std=-1"]),
        ({"minibatch_std": 1}, ["model.discriminator.minibatch_std=1", "group of one"]),
        ({"minibatch_std": 2.5}, ["model.discriminator.minibatch_std=2.5"]),
        ({"pack": 0}, ["model.discriminator.pack=0"]),
        (
            {"pack": 2, "num_classes": 10, "conditioning": "projection"},
            ["model.discriminator.pack=2", "unconditional", "self-conditioning"],
        ),
    ],
)
def test_bad_options_are_config_errors_naming_the_key(name, kwargs, needles):
    with pytest.raises(ConfigError) as err:
        NETS[name](**kwargs)
    for needle in needles:
        assert needle in str(err.value)


@pytest.mark.parametrize("name", sorted(NETS))
def test_a_batch_the_pack_does_not_divide_is_refused(name):
    net = NETS[name](pack=2)
    with pytest.raises(ConfigError) as err:
        net(torch.randn(5, *MNIST))
    assert "model.discriminator.pack=2" in str(err.value) and "batch of 5" in str(err.value)


@pytest.mark.parametrize("pack", [2, 3, 4])
def test_the_probe_pass_uses_a_multiple_of_the_pack(pack):
    g = DCGANGenerator(8, MNIST, base_width=8)
    probe_nets(g, dcgan(pack=pack), MNIST)  # would fail on 2 samples for pack 3 and 4


# --------------------------------------------------------------------------- R1
@pytest.mark.parametrize("name", sorted(NETS))
def test_r1_of_a_packed_d_is_the_r1_of_the_pack_function(name):
    torch.manual_seed(0)
    net = NETS[name](pack=2, batch_norm=False)
    x = torch.randn(6, *MNIST, requires_grad=True)
    got = r1_penalty(net(x), x, pack=2)
    # By hand: the packed D as a function of one (2C, H, W) pack; R1 = mean over packs of
    # ||grad_pack D(pack)||^2.
    packs = x.detach().reshape(3, 2, *MNIST)
    norms = []
    for pack in packs:
        pack = pack.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(pack).sum() / 2, pack)  # the logit, repeated twice
        norms.append(grad.pow(2).sum())
    torch.testing.assert_close(got, torch.stack(norms).mean())
    assert got.requires_grad  # differentiable (create_graph), as the penalty needs


def test_r1_without_packing_is_unchanged():
    torch.manual_seed(0)
    net = mlp(batch_norm=False)
    x = torch.randn(4, *MNIST, requires_grad=True)
    (grad,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
    torch.testing.assert_close(r1_penalty(net(x), x), grad.pow(2).flatten(1).sum(1).mean())


# --------------------------------------------------------------------------- Hydra
QUIET = [*SMOKE, "trainer.max_steps=2", "callbacks.interpolation=null"]
SMALL = {
    "gan": ["model.generator.hidden_sizes=[16]", "model.discriminator.hidden_sizes=[16]"],
    "dcgan": ["model.generator.base_width=8", "model.discriminator.base_width=8"],
}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gan", "dcgan"])
@pytest.mark.parametrize(
    "option", [["model.discriminator.minibatch_std=4"], ["model.discriminator.pack=2"]]
)
def test_options_through_the_config_train(model, option, mnist_dir, tmp_path):
    overrides = [f"model={model}", *SMALL[model], *option, "data.batch_size=16", *QUIET]
    cfg = compose_config([*overrides, f"paths.data_dir={mnist_dir}"], tmp_path)
    metrics = run(cfg)
    assert any(key.startswith("train/d_loss") for key in metrics)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_a_batch_size_the_pack_does_not_divide_fails_before_training(mnist_dir, tmp_path):
    overrides = ["model=gan", *SMALL["gan"], "model.discriminator.pack=3", "data.batch_size=16"]
    cfg = compose_config([*overrides, *QUIET, f"paths.data_dir={mnist_dir}"], tmp_path)
    with pytest.raises(Exception) as err:
        run(cfg)
    user = user_error(err.value)
    assert isinstance(user, ConfigError), err.value
    assert "model.discriminator.pack=3" in str(user) and "data.batch_size=16" in str(user)


def test_pack_with_a_conditional_model_is_refused_through_the_config(tmp_path):
    cfg = compose_config(
        ["model.num_classes=10", "model.conditioning=projection", "model.discriminator.pack=2"]
    )
    from hydra.utils import instantiate

    with pytest.raises(Exception) as err:
        instantiate(cfg.model)
    assert "self-conditioning" in str(user_error(err.value))
