"""GAN objectives as pure functions of discriminator logits.

All functions take *logits* (pre-sigmoid D outputs): ``log D = -softplus(-l)`` and
``log(1 - D) = -softplus(l)`` are evaluated in a numerically stable form, which is why the
discriminators in ``nets/`` end without a sigmoid.

The discriminator loss is the negated value function of Goodfellow et al.,
``-(E[log D(x)] + E[log(1 - D(G(z)))])``, i.e. the *sum* of the real and fake BCE terms
(the convention of the original paper and pytorch/examples), with optional soft targets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_lightning.errors import ConfigError

GENERATOR_OBJECTIVES = ("non_saturating", "minimax")


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    real_targets: torch.Tensor | float = 1.0,
    fake_targets: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """BCE of real samples against ``real_targets`` plus fake samples against ``fake_targets``."""
    real_t = torch.as_tensor(real_targets, dtype=real_logits.dtype, device=real_logits.device)
    fake_t = torch.as_tensor(fake_targets, dtype=fake_logits.dtype, device=fake_logits.device)
    real = F.binary_cross_entropy_with_logits(real_logits, real_t.expand_as(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, fake_t.expand_as(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor, objective: str = "non_saturating") -> torch.Tensor:
    """The generator's loss on D's logits for generated samples.

    ``minimax``: minimise ``E[log(1 - D(G(z)))]`` (Algorithm 1 of the GAN paper; saturates early,
    when D confidently rejects samples).
    ``non_saturating``: minimise ``-E[log D(G(z))]``, the paper's practical recommendation.
    """
    if objective == "non_saturating":
        return F.softplus(-fake_logits).mean()
    if objective == "minimax":
        return -F.softplus(fake_logits).mean()
    raise ConfigError(
        f"model.objective={objective!r} is not known; choose one of {list(GENERATOR_OBJECTIVES)}."
    )


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
