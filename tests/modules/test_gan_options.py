"""The GAN module's quality and safety options in real (tiny) training runs: EMA, R1,
DiffAugment in both steps, class conditioning, gradient clipping, and NaN handling."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch

from gan_lightning.errors import ConfigError, NonFiniteError
from gan_lightning.modules.gan import GAN
from gan_lightning.nets.mlp import MLPDiscriminator, MLPGenerator
from tests.helpers import tensor_loader, tiny_gan


def trainer(batches_model: GAN, batches: int, *callbacks, **kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_steps=batches_model.optimizer_steps_for(batches),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        **kwargs,
    )


def fit(model: GAN, batches: int, *callbacks, loader=None) -> pl.Trainer:
    t = trainer(model, batches, *callbacks)
    torch.manual_seed(0)
    t.fit(model, train_dataloaders=loader or tensor_loader())
    return t


class AfterBatch(pl.Callback):
    """Copies of G's parameters after every batch."""

    def __init__(self) -> None:
        self.weights: list[list[torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, *args):
        self.weights.append([p.detach().clone() for p in pl_module.generator.parameters()])


@pytest.mark.parametrize("start", [0, 3])
def test_ema_follows_the_recursion_and_copies_before_its_start(start):
    decay = 0.3  # small enough for the warm-up to reach it within the test
    model = tiny_gan(ema_decay=decay, ema_start=start)
    after = AfterBatch()
    fit(model, 6, after)
    expected, n = None, 0
    for batch, weights in enumerate(after.weights):
        if expected is None or batch < start:
            expected, n = [w.clone() for w in weights], 1  # a copy: the first update
        else:
            d = min(decay, (1 + n) / (10 + n))  # the warm-up, then the decay
            expected = [d * e + (1 - d) * w for e, w in zip(expected, weights, strict=True)]
            n += 1
    averaged = list(model.generator_ema.module.parameters())
    for got, want in zip(averaged, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert not any(p.requires_grad for p in model.generator_ema.parameters())


def test_ema_is_sampled_saved_and_restored(tmp_path):
    model = tiny_gan(ema_decay=0.5)
    t = fit(model, 4)
    z = torch.randn(3, model.latent_dim)
    with_ema = model.generate(z)
    torch.testing.assert_close(with_ema, model.generator_ema.module.eval()(z))
    model.sample_with_ema = False
    assert not torch.allclose(model.generate(z), with_ema)  # the raw G differs
    model.sample_with_ema = True
    path = tmp_path / "ema.ckpt"
    t.save_checkpoint(path)
    state = torch.load(path, weights_only=True)["state_dict"]
    assert any(k.startswith("generator_ema.module.") for k in state)
    restored = tiny_gan(ema_decay=0.5)
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.generate(z), with_ema)


def test_r1_is_added_every_r1_every_d_steps(monkeypatch):
    import gan_lightning.modules.gan as gan_module

    calls = []
    original = gan_module.r1_penalty

    def spy(logits, inputs, *pack):
        calls.append(inputs.requires_grad)
        return original(logits, inputs, *pack)

    monkeypatch.setattr(gan_module, "r1_penalty", spy)
    fit(tiny_gan(r1_gamma=10.0, r1_every=2), 5)
    assert calls == [True, True, True]  # batches 0, 2, 4, on the inputs D saw


def test_diff_augment_is_applied_to_real_and_fake_in_both_steps(monkeypatch):
    import gan_lightning.modules.gan as gan_module

    shapes = []
    original = gan_module.diff_augment

    def spy(x, policy, generator=None):
        shapes.append((x.requires_grad, tuple(policy)))
        return original(x, policy, generator)

    monkeypatch.setattr(gan_module, "diff_augment", spy)
    fit(tiny_gan(augment=["translation", "cutout"]), 2)
    # Per batch: D step (real, detached fake), G step (fake with its graph).
    assert [g for g, _ in shapes] == [False, False, True] * 2
    assert {p for _, p in shapes} == {("translation", "cutout")}


def conditional_gan(conditioning: str) -> GAN:
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    return GAN(
        generator=MLPGenerator(4, (1, 4, 4), hidden_sizes=[8], num_classes=3),
        discriminator=MLPDiscriminator(
            (1, 4, 4), hidden_sizes=[8], num_classes=3, conditioning=conditioning
        ),
        optimizer_g=adam,
        optimizer_d=adam,
        num_classes=3,
        conditioning=conditioning,
    )


def labelled_loader():
    """Images that show their class: every pixel of a class-k image is k - 1."""
    loader = tensor_loader(n=32)
    data = loader.dataset
    data.labels = torch.arange(32) % 3  # classes 0, 1, 2
    data.images = (data.labels.float() - 1).view(32, 1, 1, 1).expand(32, 1, 4, 4).clone()
    return loader


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_labels_reach_g_and_d(conditioning):
    model = conditional_gan(conditioning)
    seen = {"g": [], "head": [], "images": [], "classify": 0}
    model.generator.register_forward_pre_hook(
        lambda net, args: seen["g"].append(args[1]) if net.training else None
    )
    extract, head = model.discriminator.extract, model.discriminator.head

    def spy_extract(x):  # training calls only: not the contract probe before fit (eval mode)
        if model.discriminator.training:
            seen["images"].append(x.detach())
        return extract(x)

    def spy_head(h, labels=None):
        if model.discriminator.training:
            seen["head"].append(labels)
        return head(h, labels)

    classify = model.discriminator.classify

    def spy_classify(h):
        seen["classify"] += 1
        return classify(h)

    model.discriminator.extract = spy_extract
    model.discriminator.head = spy_head
    model.discriminator.classify = spy_classify
    t = fit(model, 2, loader=labelled_loader())
    assert len(seen["g"]) == 2 and all(y is not None and y.max() < 3 for y in seen["g"])
    assert all(y is not None and y.shape == (4,) for y in seen["head"])
    # D's first call of each batch scores the real images with *their own* labels ...
    for batch in (0, 3):
        shown = seen["images"][batch].flatten(1)[:, 0].round().long() + 1
        torch.testing.assert_close(seen["head"][batch], shown)
    # ... and the fake ones with the labels G was asked for.
    torch.testing.assert_close(seen["head"][1], seen["g"][0])
    torch.testing.assert_close(seen["head"][2], seen["g"][0])  # the G step, same batch
    metrics = t.callback_metrics
    if conditioning == "acgan":
        assert seen["classify"] == 3 * 2  # real + fake in D, fake in G, per batch
        assert "train/d_class_loss_epoch" in metrics and "train/g_class_loss_epoch" in metrics
    else:
        assert seen["classify"] == 0 and "train/d_class_loss_epoch" not in metrics


def test_conditional_model_needs_labelled_data():
    model = conditional_gan("projection")
    t = trainer(model, 1)

    class Unlabelled(pl.LightningDataModule):
        num_classes = 0

        def train_dataloader(self):
            return tensor_loader()

    with pytest.raises(ConfigError, match="class labels"):
        t.fit(model, datamodule=Unlabelled())


def test_mismatched_conditioning_is_a_config_error():
    with pytest.raises(ConfigError, match="model.num_classes=10"):
        GAN(
            MLPGenerator(4, (1, 4, 4), hidden_sizes=[8]),
            MLPDiscriminator((1, 4, 4), hidden_sizes=[8]),
            torch.optim.Adam,
            torch.optim.Adam,
            num_classes=10,
            conditioning="acgan",
        )
    with pytest.raises(ConfigError, match="label ranges"):
        tiny_gan(objective="hinge", real_label_range=(0.9, 0.9))


def test_grad_clip_bounds_the_applied_gradient_norm():
    norms = []

    class Norms(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            grads = [
                p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None
            ]
            norms.append(float(torch.nn.utils.get_total_norm(grads)))

    fit(tiny_gan(grad_clip=1e-3), 3, Norms())
    assert len(norms) == 6 and max(norms) <= 1e-3 * 1.0001


def poisoned(model: GAN, at_batch: int) -> GAN:
    """D returns NaN logits on batch ``at_batch`` (a stand-in for a diverged net)."""
    extract = model.discriminator.extract

    def nan_on(x):
        h = extract(x)
        return h * float("nan") if model.batches_seen == at_batch else h

    model.discriminator.extract = nan_on
    return model


def test_nan_stops_the_run_naming_batch_net_and_loss_before_any_update():
    model = poisoned(tiny_gan(), at_batch=2)
    after = AfterBatch()
    with pytest.raises(NonFiniteError) as err:
        fit(model, 5, after)
    message = str(err.value)
    assert "batch 2" in message and "d_loss" in message and "in the D" in message
    assert len(after.weights) == 2  # batches 0 and 1 finished
    for now, before in zip(model.generator.parameters(), after.weights[-1], strict=True):
        torch.testing.assert_close(now.detach(), before)  # nothing of batch 2 was applied
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_skip_batch_skips_the_update_and_counts_it():
    model = poisoned(tiny_gan(on_nan="skip_batch"), at_batch=1)
    t = fit(model, 4)
    assert model.skipped_batches == 1 and model.batches_seen == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert float(t.callback_metrics["train/skipped_batches"]) == 1.0


def test_bad_option_values_are_config_errors():
    for kwargs, needle in [
        ({"ema_decay": 1.5}, "model.ema_decay"),
        ({"r1_gamma": -1}, "model.r1_gamma"),
        ({"r1_every": 0}, "model.r1_every"),
        ({"grad_clip": 0}, "model.grad_clip"),
        ({"on_nan": "ignore"}, "model.on_nan"),
        ({"augment": ["mixup"]}, "model.augment"),
        ({"objective": "wgan"}, "model.objective"),
    ]:
        with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
            tiny_gan(**kwargs)


def test_a_nan_stop_keeps_the_last_good_checkpoint(tmp_path):
    """last.ckpt every 2 batches; D's logits turn NaN at batch 3: the run stops, and last.ckpt
    still holds batch 2's finite weights (nothing of batch 3 was applied or saved)."""
    from gan_lightning.callbacks.checkpoint import ModelCheckpoint
    from gan_lightning.runtime.checkpoints import AtomicCheckpointIO

    model = poisoned(tiny_gan(), at_batch=3)
    saver = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=2)
    t = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        callbacks=[saver],
        plugins=[AtomicCheckpointIO()],
    )
    with pytest.raises(NonFiniteError, match="batch 3"):
        t.fit(model, train_dataloaders=tensor_loader())
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert saved["gan_lightning"]["batches_seen"] == 2
    assert all(
        torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point()
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "last.ckpt"]  # no half-written temp file


# --------------------------------------------------------------------------- D options
def d_option_gan(net: str, **d_options) -> GAN:
    """A tiny GAN on 8x8 images whose D has the coverage options (minibatch stddev, packing)."""
    from gan_lightning.nets.dcgan import DCGANDiscriminator, DCGANGenerator

    shape = (1, 8, 8)
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    if net == "dcgan":
        g = DCGANGenerator(4, shape, base_width=4)
        d = DCGANDiscriminator(shape, base_width=4, **d_options)
    else:
        g = MLPGenerator(4, shape, hidden_sizes=[8])
        d = MLPDiscriminator(shape, hidden_sizes=[8], **d_options)
    return GAN(
        generator=g,
        discriminator=d,
        optimizer_g=adam,
        optimizer_d=adam,
        r1_gamma=1.0,
        r1_every=1,
        augment=["translation", "cutout"],
    )


@pytest.mark.parametrize("net", ["mlp", "dcgan"])
@pytest.mark.parametrize(
    "options", [{"minibatch_std": 4}, {"pack": 2}, {"minibatch_std": 2, "pack": 2}]
)
def test_d_options_train_with_r1_and_diffaugment(net, options, monkeypatch):
    import gan_lightning.modules.gan as gan_module

    penalties = []
    original = gan_module.r1_penalty

    def spy(logits, inputs, *pack):
        penalties.append((pack, original(logits, inputs, *pack)))
        return penalties[-1][1]

    monkeypatch.setattr(gan_module, "r1_penalty", spy)
    model = d_option_gan(net, **options)
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    t = pl.Trainer(
        accelerator="cpu",
        max_steps=model.optimizer_steps_for(3),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    torch.manual_seed(0)
    t.fit(model, train_dataloaders=tensor_loader(shape=(1, 8, 8)))
    assert model.batches_seen == 3 and len(penalties) == 3
    pack = options.get("pack", 1)
    assert all(p == (pack,) and torch.isfinite(v) and v > 0 for p, v in penalties)
    after = list(model.discriminator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    # Validation keeps whole packs: batches of 4 and a last one of 3 (2 of them with pack 2).
    metrics = t.validate(model, val_loader(7), verbose=False)
    assert torch.isfinite(torch.tensor(metrics[0]["val/d_loss"]))


def val_loader(n: int):
    """n images of 8x8 in batches of 4, the last one smaller (validation drops none)."""
    from torch.utils.data import DataLoader

    train = tensor_loader(n=n, batch_size=4, shape=(1, 8, 8))
    return DataLoader(train.dataset, batch_size=4, collate_fn=train.collate_fn)


def test_validation_skips_a_last_batch_smaller_than_the_pack():
    model = d_option_gan("mlp", pack=2)
    t = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    metrics = t.validate(model, val_loader(5), verbose=False)  # 4 + 1: the 1 is skipped
    assert torch.isfinite(torch.tensor(metrics[0]["val/d_loss"]))
