"""GAN objectives against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.losses import discriminator_loss, generator_loss, sample_targets

LOG2 = math.log(2.0)


def test_discriminator_loss_at_indifference_is_2_log_2():
    zeros = torch.zeros(8)  # D(x) = 1/2 everywhere: the optimum of Proposition 1 at p_g = p_data
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(2 * LOG2)


def test_discriminator_loss_matches_value_function():
    real = torch.tensor([2.0, -1.0])
    fake = torch.tensor([0.5, -3.0])
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    assert discriminator_loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-6)


def test_soft_targets():
    real = torch.tensor([0.0])
    # BCE(0.5 | t) = log 2 for any target t
    assert discriminator_loss(real, real, 0.9, 0.1).item() == pytest.approx(2 * LOG2)
    logits = torch.tensor([1.0])
    p = torch.sigmoid(logits)
    expected = -(0.9 * torch.log(p) + 0.1 * torch.log(1 - p)) - torch.log(1 - p)
    assert discriminator_loss(logits, logits, 0.9, 0.0).item() == pytest.approx(expected.item())


def test_generator_objectives():
    zeros = torch.zeros(4)
    assert generator_loss(zeros, "non_saturating").item() == pytest.approx(LOG2)
    assert generator_loss(zeros, "minimax").item() == pytest.approx(-LOG2)
    logits = torch.tensor([-4.0, 1.0])
    d = torch.sigmoid(logits)
    assert generator_loss(logits, "non_saturating").item() == pytest.approx(
        -torch.log(d).mean().item(), rel=1e-6
    )
    assert generator_loss(logits, "minimax").item() == pytest.approx(
        torch.log(1 - d).mean().item(), rel=1e-6
    )


def test_minimax_saturates_where_non_saturating_does_not():
    # D confidently rejects the fakes: the minimax gradient vanishes, the non-saturating one not.
    logits = torch.full((4,), -10.0, requires_grad=True)
    generator_loss(logits, "minimax").backward()
    g_minimax = logits.grad.abs().max().item()
    logits.grad = None
    generator_loss(logits, "non_saturating").backward()
    assert g_minimax < 1e-4 < logits.grad.abs().max().item()


def test_both_objectives_push_the_logit_up_with_gradient_ratio_exp_l():
    """d/dl of log(1 - sigmoid(l)) over d/dl of -log sigmoid(l) is exp(l): same sign, and
    minimax vanishes where D confidently rejects the samples (l << 0)."""
    logits = torch.tensor([-8.0, 0.0, 8.0], requires_grad=True)
    grads = {}
    for objective in ("non_saturating", "minimax"):
        (grads[objective],) = torch.autograd.grad(generator_loss(logits, objective), logits)
        assert (grads[objective] < 0).all()  # lowering the loss raises every logit
    torch.testing.assert_close(
        grads["minimax"] / grads["non_saturating"], torch.exp(logits.detach())
    )


def test_unknown_objective():
    with pytest.raises(ConfigError, match="non_saturating"):
        generator_loss(torch.zeros(1), "wasserstein")


def test_sample_targets_point_and_range():
    like = torch.zeros(1)
    assert sample_targets(5, (1.0, 1.0), like) == 1.0
    torch.manual_seed(0)
    t = sample_targets(10_000, (0.7, 1.0), like)
    assert t.shape == (10_000,) and t.min() >= 0.7 and t.max() <= 1.0
    assert t.mean().item() == pytest.approx(0.85, abs=0.01)


def test_hinge_against_hand_values():
    real = torch.tensor([2.0, 0.5, -1.0])  # max(0, 1 - l): 0, 0.5, 2 -> mean 5/6
    fake = torch.tensor([-2.0, 0.0])  # max(0, 1 + l): 0, 1 -> mean 1/2
    assert discriminator_loss(real, fake, objective="hinge").item() == pytest.approx(5 / 6 + 0.5)
    assert generator_loss(fake, "hinge").item() == pytest.approx(1.0)  # -mean(l)


def test_least_squares_against_hand_values():
    real = torch.tensor([1.0, 0.0])  # (l - 1)^2: 0, 1 -> mean 0.5
    fake = torch.tensor([0.5, -1.0])  # l^2: 0.25, 1 -> mean 0.625
    assert discriminator_loss(real, fake, objective="least_squares").item() == pytest.approx(
        0.5 * (0.5 + 0.625)
    )
    # Soft targets apply to the least-squares coding too: (1 - 0.9)^2 and (0 - 0.1)^2.
    one = torch.tensor([1.0])
    zero = torch.tensor([0.0])
    assert discriminator_loss(one, zero, 0.9, 0.1, "least_squares").item() == pytest.approx(0.01)
    assert generator_loss(torch.tensor([0.0, 3.0]), "least_squares").item() == pytest.approx(
        0.5 * (1.0 + 4.0) / 2
    )


def test_r1_is_the_squared_input_gradient_norm():
    from gan_lightning.losses import r1_penalty

    w = torch.tensor(
        [3.0, -4.0], requires_grad=True
    )  # a linear D: l(x) = w.x, grad_x l = w, ||w||^2 = 25
    x = torch.randn(5, 2, requires_grad=True)
    penalty = r1_penalty(x @ w, x)
    assert penalty.item() == pytest.approx(25.0)
    assert penalty.requires_grad  # differentiable: it trains D
    quadratic = r1_penalty((x**2).sum(1), x)  # grad 2x -> E[4 ||x||^2]
    assert quadratic.item() == pytest.approx(4 * (x.detach() ** 2).sum(1).mean().item(), rel=1e-5)
