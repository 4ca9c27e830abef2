"""Variational autoencoder (Kingma & Welling) on the GenerativeModule contract.

The loss is the negative ELBO with a weight on the KL term (beta-VAE; beta = 1 is the ELBO):

    loss = mean over the batch of [ -log p(x|z) summed over pixels + beta * KL(q(z|x) || p(z)) ]

with one reparameterised sample ``z = mu + sigma * eps``. Both terms are summed *per image*
and then averaged over the batch, so ``val/loss`` is an upper bound on ``-log p(x)`` in nats
per image and the balance of the two terms does not depend on the batch size or image size.

Pixel range. The decoder outputs pre-sigmoid values ``o``; the likelihood mean is
``sigmoid(o)`` mapped into ``pixel_range``. The Bernoulli likelihood (``reconstruction: bce``,
seed 002) models intensities in [0, 1], so it requires ``data.pixel_range=[0, 1]``: the VAE
model configs set that (``# @package _global_``), and any other range raises ConfigError before
training. The Gaussian/MSE likelihoods work with every supported range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.losses import RECONSTRUCTION_LOSSES, kl_divergence, reconstruction_loss
from gan_lightning.modules.base import GenerativeModule, OptimizerFactory, check_optimizer
from gan_lightning.nets.priors import NormalPrior
from gan_lightning.utils.batches import images_of
from gan_lightning.utils.modes import eval_mode
from gan_lightning.utils.pixels import from_unit, to_unit


class VAE(GenerativeModule):
    """Encoder q(z|x) + decoder p(x|z) trained on the (beta-weighted) negative ELBO.

    Args:
        encoder: images -> (mu, logvar), see :class:`gan_lightning.nets.vae.GaussianEncoder`.
        decoder: z -> pre-sigmoid pixels (N, *image_shape).
        optimizer: optimizer factory (Hydra ``_partial_``) bound to encoder + decoder.
        latent_dim: optional check that both nets agree with ``model.latent_dim``.
        pixel_range: the data's range (``bce`` needs [0, 1]).
        reconstruction: ``bce`` (Bernoulli, default), ``gaussian`` (fixed ``sigma``) or ``mse``.
        beta: weight of the KL term (1 = the ELBO).
        sigma: standard deviation of the Gaussian likelihood, in pixel units.
        prior: must be N(0, I) (the KL term is its closed form).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        optimizer: OptimizerFactory,
        latent_dim: int | None = None,
        pixel_range: Sequence[float] = (0.0, 1.0),
        reconstruction: str = "bce",
        beta: float = 1.0,
        sigma: float = 0.1,
        prior: Any = None,
    ) -> None:
        if encoder.latent_dim != decoder.latent_dim:
            raise ConfigError(
                f"model.encoder.latent_dim={encoder.latent_dim} != "
                f"model.decoder.latent_dim={decoder.latent_dim}; set both to ${{model.latent_dim}}."
            )
        if latent_dim is not None and int(latent_dim) != encoder.latent_dim:
            raise ConfigError(
                f"model.latent_dim={latent_dim} but the encoder outputs {encoder.latent_dim}; "
                "set the nets' latent_dim to ${model.latent_dim}."
            )
        if tuple(encoder.image_shape) != tuple(decoder.image_shape):
            raise ConfigError(
                f"model.encoder.image_shape={list(encoder.image_shape)} != "
                f"model.decoder.image_shape={list(decoder.image_shape)}."
            )
        prior = prior if prior is not None else NormalPrior()
        if getattr(prior, "name", None) != "normal":
            raise ConfigError(
                f"model.prior={prior!r}: the VAE's KL term is the closed form for a N(0, I) prior; "
                "use gan_lightning.nets.priors.NormalPrior."
            )
        super().__init__(encoder.latent_dim, pixel_range, prior)
        if reconstruction not in RECONSTRUCTION_LOSSES:
            raise ConfigError(
                f"model.reconstruction={reconstruction!r} is not known; choose one of "
                f"{list(RECONSTRUCTION_LOSSES)}."
            )
        if reconstruction == "bce" and self.pixel_range != (0.0, 1.0):
            raise ConfigError(
                f"model.reconstruction=bce (Bernoulli likelihood of pixel intensities) needs "
                f"data.pixel_range=[0, 1]; got {list(self.pixel_range)}. The VAE model configs set "
                "data.pixel_range to [0, 1]: drop the pixel_range override, or choose "
                "model.reconstruction=gaussian or mse."
            )
        if not float(beta) >= 0:
            raise ConfigError(f"model.beta must be >= 0; got {beta}.")
        if reconstruction == "gaussian" and not float(sigma) > 0:
            raise ConfigError(f"model.sigma must be > 0; got {sigma}.")
        check_optimizer("optimizer", optimizer)
        self.encoder = encoder
        self.decoder = decoder
        self.optimizer = optimizer
        self.reconstruction = reconstruction
        self.beta = float(beta)
        self.sigma = float(sigma)
        self.image_shape = tuple(encoder.image_shape)

    # ------------------------------------------------------------------ model
    def mean(self, decoded: torch.Tensor) -> torch.Tensor:
        """The likelihood mean in ``pixel_range`` from the decoder's pre-sigmoid output."""
        return from_unit(torch.sigmoid(decoded), self.pixel_range)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): a sample whose gradient reaches mu, sigma."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(decoded, mu, logvar)`` for images x: one reparameterised pass."""
        mu, logvar = self.encoder(x)  # (N, L) each
        decoded = self.decoder(self.reparameterize(mu, logvar))  # (N, C, H, W), pre-sigmoid
        return decoded, mu, logvar

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batch means of the per-image reconstruction and KL terms, and the loss."""
        decoded, mu, logvar = self(x)
        if self.reconstruction == "bce":
            recon = reconstruction_loss(decoded, to_unit(x, self.pixel_range), "bce")
        else:
            recon = reconstruction_loss(self.mean(decoded), x, self.reconstruction, self.sigma)
        recon = recon.mean()
        kl = kl_divergence(mu, logvar).mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}

    # ------------------------------------------------------------------ contract
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.mean(self.decoder(z))

    def sampling_nets(self) -> list[nn.Module]:
        return [self.decoder]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstructions ``mean(decoder(mu(x)))`` in ``pixel_range``, in eval
        mode (restored afterwards); used by the reconstruction-grid callback."""
        with eval_mode(self.encoder, self.decoder):
            mu, _ = self.encoder(x.to(self.device))
            return self.decode(mu).float()

    # ------------------------------------------------------------------ training
    def configure_optimizers(self):
        return self.optimizer(params=self.parameters())

    def _log(self, stage: str, terms: dict[str, torch.Tensor], batch_size: int) -> None:
        values = {f"{stage}/{k}": terms[k] for k in ("loss", "recon", "kl")}
        if stage == "train":
            self.log_train(values, batch_size, prog_bar=("train/loss",))
        else:
            loss = values.pop(f"{stage}/loss")
            self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True, batch_size=batch_size)
            self.log_dict(values, sync_dist=True, batch_size=batch_size)

    def precision_probe(self, images: torch.Tensor) -> torch.Tensor:
        """The loss of one training pass, which ``trainer.precision=auto`` times in fp32 and
        bf16 on a copy of this module."""
        return self.loss_terms(images)["loss"]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = images_of(batch)
        terms = self.loss_terms(x)
        self.batches_seen += 1
        self._log("train", terms, x.shape[0])
        return terms["loss"]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = images_of(batch)
        self._log("val", self.loss_terms(x), x.shape[0])
