"""GAN and VAE objectives as pure functions of logits and targets.

All GAN functions take discriminator *logits* (pre-sigmoid D outputs): ``log D = -softplus(-l)``
and ``log(1 - D) = -softplus(l)`` are evaluated in a numerically stable form, which is why the
discriminators in ``nets/`` end without a sigmoid. They return means over the batch, in the
dtype of the logits (the module hands them fp32 logits under mixed precision).

Objectives (``model.objective``), each a D loss and a G loss:

* ``non_saturating`` (default) and ``minimax``: the GAN paper's value function for D,
  ``-(E[log D(x)] + E[log(1 - D(G(z)))])`` (the *sum* of the real and fake BCE terms, as in
  the paper and pytorch/examples), with optional soft targets; G minimises
  ``-E[log D(G(z))]`` or ``E[log(1 - D(G(z)))]``.
* ``hinge`` (Lim & Ye 2017; Miyato et al. 2018, with spectral norm): D minimises
  ``E[max(0, 1 - l(x))] + E[max(0, 1 + l(G(z)))]``, G minimises ``-E[l(G(z))]``.
* ``least_squares`` (LSGAN, Mao et al. 2017, the 0-1 coding): D minimises
  ``1/2 E[(l(x) - 1)^2] + 1/2 E[l(G(z))^2]`` (targets 1/0, or the label ranges), G minimises
  ``1/2 E[(l(G(z)) - 1)^2]``; ``l`` is D's raw output, not a probability.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_lightning.errors import ConfigError

GENERATOR_OBJECTIVES = ("non_saturating", "minimax", "hinge", "least_squares")
#: Objectives whose D loss has targets (so label smoothing / noisy labels mean something).
TARGETED_OBJECTIVES = ("non_saturating", "minimax", "least_squares")


def check_objective(objective: str) -> str:
    if objective not in GENERATOR_OBJECTIVES:
        raise ConfigError(
            f"model.objective={objective!r} is not known; choose one of {list(GENERATOR_OBJECTIVES)}."
        )
    return objective


def _targets(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand_as(like)


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    real_targets: torch.Tensor | float = 1.0,
    fake_targets: torch.Tensor | float = 0.0,
    objective: str = "non_saturating",
) -> torch.Tensor:
    """D's loss on real and fake logits; targets apply to the BCE and least-squares losses."""
    if objective in ("non_saturating", "minimax"):
        real = F.binary_cross_entropy_with_logits(real_logits, _targets(real_targets, real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, _targets(fake_targets, fake_logits))
        return real + fake
    if objective == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    if objective == "least_squares":
        real = (real_logits - _targets(real_targets, real_logits)).pow(2).mean()
        fake = (fake_logits - _targets(fake_targets, fake_logits)).pow(2).mean()
        return 0.5 * (real + fake)
    check_objective(objective)
    raise AssertionError("unreachable")  # pragma: no cover


def generator_loss(fake_logits: torch.Tensor, objective: str = "non_saturating") -> torch.Tensor:
    """The generator's loss on D's logits for generated samples.

    ``minimax``: minimise ``E[log(1 - D(G(z)))]`` (Algorithm 1 of the GAN paper; saturates early,
    when D confidently rejects samples). ``non_saturating``: minimise ``-E[log D(G(z))]``, the
    paper's practical recommendation. ``hinge``: ``-E[l]``. ``least_squares``: ``1/2 E[(l-1)^2]``.
    """
    if objective == "non_saturating":
        return F.softplus(-fake_logits).mean()
    if objective == "minimax":
        return -F.softplus(fake_logits).mean()
    if objective == "hinge":
        return -fake_logits.mean()
    if objective == "least_squares":
        return 0.5 * (fake_logits - 1.0).pow(2).mean()
    check_objective(objective)
    raise AssertionError("unreachable")  # pragma: no cover


def sample_targets(
    n: int,
    label_range: tuple[float, float],
    like: torch.Tensor,
) -> torch.Tensor | float:
    """Targets for a batch: a constant when the range is a point, else U(low, high) per sample.

    Seed 003's "dynamic ground truth": fake labels drawn from [0, 0.3], real from [0.7, 1].
    One-sided label smoothing is the point range [0.9, 0.9] for real samples.
    """
    low, high = label_range
    if low == high:
        return float(low)
    return torch.empty(n, dtype=like.dtype, device=like.device).uniform_(low, high)


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor, pack: int = 1) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``E[||grad_x D(x)||^2]`` on real data, differentiable.

    ``real_inputs`` must have ``requires_grad=True`` and be what D saw (after augmentation).
    The module multiplies it by ``gamma / 2`` (and by the lazy interval, StyleGAN2-style).

    ``pack`` = m > 1: a packing D (PacGAN) returns each pack's logit m times (consecutive
    images form a pack); R1 is then taken per pack, ``E_packs[||grad_pack D(pack)||^2]``, the
    squared gradient norms of the m images of a pack summed, exactly the R1 of the packed D as a
    function of its m-image input (not m times it, which the repeated logits would give).
    """
    (grad,) = torch.autograd.grad(real_logits.sum() / pack, real_inputs, create_graph=True)
    per_image = grad.pow(2).flatten(1).sum(1)  # (N,)
    return per_image.view(-1, pack).sum(1).mean() if pack > 1 else per_image.mean()


def class_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The auxiliary classifier's cross-entropy (AC-GAN, Odena et al. 2017)."""
    return F.cross_entropy(class_logits, labels)


# --------------------------------------------------------------------------- VAE objectives
#: Reconstruction terms :func:`reconstruction_loss` knows (``-log p(x|z)`` per image).
RECONSTRUCTION_LOSSES = ("bce", "gaussian", "mse")

_HALF_LOG_2PI = 0.9189385332046727  # 0.5 * log(2 * pi)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, summed over latent dims: (N,).

    The closed form ``0.5 * sum(mu^2 + sigma^2 - log sigma^2 - 1)`` of Kingma & Welling
    (Appendix B); seed 002 writes the same sum without the 1/2 and with ``log sigma``.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).flatten(1).sum(1)


def reconstruction_loss(
    decoded: torch.Tensor,
    target: torch.Tensor,
    kind: str = "bce",
    sigma: float = 1.0,
) -> torch.Tensor:
    """``-log p(x|z)`` per image, summed over pixels: (N,). Summing (not averaging) over pixels
    is what makes ``recon + KL`` the negative ELBO; a per-pixel mean silently down-weights the
    likelihood against the KL term by the number of pixels.

    * ``bce``: Bernoulli likelihood; ``decoded`` are *logits*, ``target`` in [0, 1].
    * ``gaussian``: N(decoded, sigma^2 I) with fixed ``sigma``, including the normalising
      constant, so the value is a true negative log-density; ``decoded`` is the mean.
    * ``mse``: summed squared error (the Gaussian term without constant, sigma^2 = 1/2).
    """
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(decoded, target, reduction="none")
    elif kind == "mse":
        per_pixel = (decoded - target).pow(2)
    elif kind == "gaussian":
        if not sigma > 0:
            raise ConfigError(f"model.sigma must be > 0 for the Gaussian likelihood; got {sigma}.")
        log_sigma = torch.tensor(float(sigma)).log().item()  # a CPU scalar: no device sync
        per_pixel = 0.5 * ((decoded - target) / sigma).pow(2) + (log_sigma + _HALF_LOG_2PI)
    else:
        raise ConfigError(
            f"model.reconstruction={kind!r} is not known; choose one of {list(RECONSTRUCTION_LOSSES)}."
        )
    return per_pixel.flatten(1).sum(1)
