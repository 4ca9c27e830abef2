"""The GAN LightningModule itself: what flows where in one training step.

Every test trains a tiny MLP GAN for a few batches in a real Trainer and spies on the nets
(forward hooks) and the optimizers (``on_before_optimizer_step``), so what is checked is the
module's actual training step, not a re-implementation of it.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from tests.helpers import fit_tiny, tiny_gan


class Spy(pl.Callback):
    """Snapshots of the gradients each optimizer is about to apply, per real batch."""

    def __init__(self) -> None:
        self.steps: list[dict] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        net = "G" if optimizer is pl_module.optimizers()[0].optimizer else "D"

        def grads(module):
            return [None if p.grad is None else p.grad.clone() for p in module.parameters()]

        self.steps.append(
            {
                "batch": pl_module.batches_seen,
                "net": net,
                "g_grads": grads(pl_module.generator),
                "d_grads": grads(pl_module.discriminator),
            }
        )


def train(model, batches: int, *callbacks) -> pl.Trainer:
    return fit_tiny(model, batches, *callbacks)


def test_d_step_sees_a_detached_fake_batch():
    """D's loss must not reach G: at D's first optimizer step G has no gradient at all."""
    spy = Spy()
    train(tiny_gan(), 1, spy)
    d_step, g_step = spy.steps
    assert (d_step["net"], g_step["net"]) == ("D", "G")
    assert all(g is None for g in d_step["g_grads"])
    assert all(g is not None for g in g_step["g_grads"])


def test_g_step_leaves_d_gradients_alone():
    """In the G step D is frozen (toggle_optimizer): its gradients are exactly those of its own
    step on the same batch, not those plus G's loss."""
    spy = Spy()
    train(tiny_gan(), 3, spy)
    for d_step, g_step in zip(spy.steps[::2], spy.steps[1::2], strict=True):
        assert (d_step["net"], g_step["net"]) == ("D", "G")
        for before, after in zip(d_step["d_grads"], g_step["d_grads"], strict=True):
            torch.testing.assert_close(after, before, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("real_range", "fake_range"), [((0.9, 0.9), (0.0, 0.0)), ((0.7, 1.0), (0.0, 0.3))]
)
def test_label_targets_reach_the_discriminator_loss(monkeypatch, real_range, fake_range):
    import gan_lightning.modules.gan as gan_module

    seen = []
    original = gan_module.discriminator_loss

    def spy(real_logits, fake_logits, real_targets=1.0, fake_targets=0.0, *args):
        seen.append((real_targets, fake_targets))
        return original(real_logits, fake_logits, real_targets, fake_targets, *args)

    monkeypatch.setattr(gan_module, "discriminator_loss", spy)
    train(tiny_gan(real_label_range=real_range, fake_label_range=fake_range), 2)
    assert len(seen) == 2
    for real_t, fake_t in seen:
        for targets, (low, high) in ((real_t, real_range), (fake_t, fake_range)):
            values = torch.as_tensor(targets, dtype=torch.float64).flatten()
            assert float(values.min()) >= low and float(values.max()) <= high
            if low == high:
                assert values.numel() == 1 and float(values) == pytest.approx(low)
            else:  # noisy labels: one draw per sample, not one constant
                assert values.numel() == 4 and float(values.std()) > 0


@pytest.mark.parametrize("objective", ["non_saturating", "minimax"])
def test_a_g_step_raises_d_of_g_for_both_objectives(objective):
    """Both objectives push G towards what D calls real; D barely moves (lr 1e-12)."""
    import functools

    model = tiny_gan(objective=objective)
    model.optimizer_d = functools.partial(torch.optim.SGD, lr=1e-12)
    model.optimizer_g = functools.partial(torch.optim.SGD, lr=0.05)
    z = torch.randn(256, model.latent_dim, generator=torch.Generator().manual_seed(1))

    def mean_logit() -> float:
        with torch.no_grad():
            return float(model.discriminator(model.generator(z)).mean())

    before = mean_logit()
    train(model, 5)
    assert mean_logit() > before


@pytest.mark.parametrize(("d_steps", "batches"), [(1, 3), (3, 6)])
def test_one_generator_forward_per_batch_without_a_graph_on_d_only_batches(d_steps, batches):
    model = tiny_gan(d_steps=d_steps)
    forwards = []
    model.generator.register_forward_hook(
        lambda net, args, out: (
            forwards.append((model.batches_seen, out.requires_grad)) if net.training else None
        )
    )
    train(model, batches)
    assert [b for b, _ in forwards] == list(range(batches))  # exactly one per real batch
    graphs = [needs_grad for _, needs_grad in forwards]
    assert graphs == [model.schedule.updates(b)[1] for b in range(batches)]  # G-step batches only


@pytest.mark.parametrize("augment", [None, "translation"])
def test_validation_scores_g_with_the_logits_d_gave_unless_augmentation_redraws(augment):
    """In validation D (eval mode) is not run twice on the fake batch: G's loss uses the
    logits of D's pass, the same values a second pass would give; with DiffAugment (a new
    draw per pass) the second pass stays."""
    model = tiny_gan(augment=augment)
    model.eval()
    logged: dict[str, torch.Tensor] = {}
    model.log_dict = lambda values, **_: logged.update(values)
    calls = []
    original = model._discriminate
    model._discriminate = lambda *a, **k: calls.append(1) or original(*a, **k)
    real = torch.rand(6, 1, 4, 4) * 2 - 1
    torch.manual_seed(0)
    with torch.inference_mode():
        model.validation_step((real, torch.zeros(6, dtype=torch.long)), 0)
        torch.manual_seed(0)
        fake = model.generate(model.sample_latent(6), None)
        expected = model.g_terms(fake, None)["g_loss"]
    assert len(calls) == (3 if augment else 2) + 1  # + the g_terms call of the reference
    if not augment:
        assert torch.equal(logged["val/g_loss"], expected)
