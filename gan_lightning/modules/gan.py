"""The one GAN LightningModule: MLP GANs and DCGANs differ only in the nets Hydra injects.

Manual optimization, one real minibatch per ``training_step``. The :class:`UpdateSchedule`
decides whether D, G or both are updated on that batch; the number of batches seen so far is
saved in checkpoints, so a resumed run continues the D:G cycle where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.losses import (
    GENERATOR_OBJECTIVES,
    discriminator_loss,
    generator_loss,
    sample_targets,
)
from gan_lightning.modules.base import GenerativeModule, OptimizerFactory, check_optimizer
from gan_lightning.modules.schedule import UpdateSchedule
from gan_lightning.utils.batches import images_of
from gan_lightning.utils.pixels import activation_can_produce


def _check_label_range(name: str, value: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model.{name} must be a pair [low, high]; got {value!r}.") from err
    if not 0.0 <= low <= high <= 1.0:
        raise ConfigError(f"model.{name}={[low, high]} must satisfy 0 <= low <= high <= 1.")
    return low, high


class GAN(GenerativeModule):
    """Generative adversarial network trained by Goodfellow's Algorithm 1 (and variants).

    Args:
        generator: maps z (N, latent_dim) to images (N, *image_shape).
        discriminator: maps images to logits (N,).
        optimizer_g / optimizer_d: optimizer factories (Hydra ``_partial_``) bound to each net.
        d_steps / g_steps: k D updates per G update, or k G updates per D update.
        objective: ``non_saturating`` (default) or ``minimax`` generator loss.
        real_label_range / fake_label_range: D's targets; a point ``[0.9, 0.9]`` is one-sided
            label smoothing, a range ``[0.7, 1.0]`` draws noisy labels per sample (seed 003).
        pixel_range: the data's range; the generator's output activation must cover it.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        prior: Any = None,
        latent_dim: int | None = None,
        pixel_range: Sequence[float] = (-1.0, 1.0),
        d_steps: int = 1,
        g_steps: int = 1,
        objective: str = "non_saturating",
        real_label_range: Sequence[float] = (1.0, 1.0),
        fake_label_range: Sequence[float] = (0.0, 0.0),
    ) -> None:
        if latent_dim is not None and int(latent_dim) != generator.latent_dim:
            raise ConfigError(
                f"model.latent_dim={latent_dim} but the generator takes {generator.latent_dim}; "
                "set the generator's latent_dim to ${model.latent_dim}."
            )
        super().__init__(generator.latent_dim, pixel_range, prior)
        self.automatic_optimization = False
        if objective not in GENERATOR_OBJECTIVES:
            raise ConfigError(
                f"model.objective={objective!r} is not known; choose one of {list(GENERATOR_OBJECTIVES)}."
            )
        activation = getattr(generator, "output_activation_name", "linear")
        if not activation_can_produce(activation, self.pixel_range):
            raise ConfigError(
                f"The generator's output activation {activation!r} cannot produce pixels in "
                f"data.pixel_range={list(self.pixel_range)}. Use model.generator.output_activation="
                "tanh for [-1,1] or [-0.5,0.5], sigmoid or tanh for [0,1] (linear fits any)."
            )
        check_optimizer("optimizer_g", optimizer_g)
        check_optimizer("optimizer_d", optimizer_d)
        self.generator = generator
        self.discriminator = discriminator
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.schedule = UpdateSchedule(int(d_steps), int(g_steps))
        self.objective = objective
        self.real_label_range = _check_label_range("real_label_range", real_label_range)
        self.fake_label_range = _check_label_range("fake_label_range", fake_label_range)

    # ------------------------------------------------------------------ contract
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def sampling_nets(self) -> list[nn.Module]:
        return [self.generator]

    def optimizer_steps_for(self, n_batches: int) -> int:
        return self.schedule.optimizer_steps(n_batches)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    # ------------------------------------------------------------------ training
    def configure_optimizers(self):
        # Order matters: self.optimizers() returns (opt_g, opt_d) in training_step.
        return [
            self.optimizer_g(params=self.generator.parameters()),
            self.optimizer_d(params=self.discriminator.parameters()),
        ]

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake)
        loss = discriminator_loss(
            real_logits,
            fake_logits,
            sample_targets(real_logits.shape[0], self.real_label_range, real_logits),
            sample_targets(fake_logits.shape[0], self.fake_label_range, fake_logits),
        )
        return {
            "d_loss": loss,
            "d_real": torch.sigmoid(real_logits.detach()).mean(),  # D(x)
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),  # D(G(z)) before the D step
        }

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = images_of(batch)
        update_d, update_g = self.schedule.updates(self.batches_seen)
        opt_g, opt_d = self.optimizers()
        # One G forward per batch, shared by the D and G steps. On batches where only D is
        # updated (d_steps > 1) nothing flows back into G, so no graph is built. G stays in
        # train mode either way: its BatchNorm layers normalise with this batch's statistics
        # and update their running averages exactly as on a G-step batch. That is wanted: the
        # running averages (used only in eval mode, for samples and scores) then follow the
        # generator's current output on every batch, not on every k-th one.
        with torch.set_grad_enabled(update_g):
            fake = self.generator(self.sample_latent(real.shape[0]))  # (N, *image_shape)
        logs: dict[str, torch.Tensor] = {}

        if update_d:
            self.toggle_optimizer(opt_d)
            out = self._d_loss(real, fake.detach())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(out["d_loss"])
            opt_d.step()
            self.untoggle_optimizer(opt_d)
            logs.update(out)

        if update_g:
            self.toggle_optimizer(opt_g)
            g_loss = generator_loss(self.discriminator(fake), self.objective)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            logs["g_loss"] = g_loss.detach()

        self.batches_seen += 1
        bar = {k: v for k, v in logs.items() if k in ("d_loss", "g_loss")}
        self.log_dict(
            {f"train/{k}": v for k, v in bar.items()},
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            batch_size=real.shape[0],
        )
        rest = {f"train/{k}": v for k, v in logs.items() if k not in bar}
        if rest:
            self.log_dict(rest, on_step=True, on_epoch=True, batch_size=real.shape[0])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        real = images_of(batch)
        fake = self.generate(self.sample_latent(real.shape[0]))
        out = self._d_loss(real, fake)
        out["g_loss"] = generator_loss(self.discriminator(fake), self.objective)
        self.log_dict(
            {f"val/{k}": v for k, v in out.items()}, sync_dist=True, batch_size=real.shape[0]
        )
