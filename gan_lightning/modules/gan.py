"""The one GAN LightningModule: MLP GANs, DCGANs and their conditional and modern variants differ
only in the nets Hydra injects and in options of this class.

Manual optimization, one real minibatch per ``training_step``. The :class:`UpdateSchedule`
decides whether D, G or both are updated on that batch; the number of batches seen so far is
saved in checkpoints, so a resumed run continues the D:G cycle where it stopped.

Options, each off by default (``conf/model/gan.yaml``, docs/models.md):

* ``objective``: ``non_saturating`` | ``minimax`` | ``hinge`` | ``least_squares``
  (:mod:`gan_lightning.losses`); label smoothing / noisy labels for the targeted ones;
* ``ema_decay``: an exponential moving average of G's weights and BatchNorm buffers
  (``torch.optim.swa_utils.AveragedModel``), used for samples, scores and ``gan-generate``
  when ``sample_with_ema``;
* ``r1_gamma`` / ``r1_every``: the R1 gradient penalty on real data, lazily every k D steps;
* ``augment``: DiffAugment policies applied to every image D sees (:mod:`gan_lightning.augment`);
* class conditioning: ``num_classes`` with a projection or AC-GAN discriminator
  (:mod:`gan_lightning.nets.conditional`), labels from the DataModule;
* ``self_conditioning``: labels without labels, the cluster ids of real images
  (:mod:`gan_lightning.modules.self_conditioning`), drawn for G with the clusters' frequencies;
* a discriminator with ``pack`` = m > 1 (PacGAN, ``model.discriminator.pack``): R1 per pack,
  ``data.batch_size`` a multiple of m, validation on whole packs (the nets' other coverage
  option, ``minibatch_std``, needs nothing here);
* ``grad_clip``: gradient-norm clipping through Lightning's ``clip_gradients``;
* ``on_nan``: a non-finite loss or gradient stops the run (``stop``) or skips that update
  (``skip_batch``), before any weight or EMA is touched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from gan_lightning.augment import check_policy, diff_augment
from gan_lightning.contracts import (
    as_logits,
    check_datamodule,
    check_discriminator,
    check_generator,
    probe_nets,
)
from gan_lightning.errors import ConfigError, NonFiniteError
from gan_lightning.losses import (
    TARGETED_OBJECTIVES,
    check_objective,
    class_loss,
    discriminator_loss,
    generator_loss,
    r1_penalty,
    sample_targets,
)
from gan_lightning.modules.base import GenerativeModule, OptimizerFactory, check_optimizer
from gan_lightning.modules.ema import ema_weight, lerp_all, update_ema
from gan_lightning.modules.nan_guard import NanGuard, describe, stop_message
from gan_lightning.modules.schedule import UpdateSchedule
from gan_lightning.modules.self_conditioning import SelfConditioning
from gan_lightning.runtime.compat import any_nonfinite
from gan_lightning.utils.batches import images_of, labels_of
from gan_lightning.utils.pixels import activation_can_produce

log = logging.getLogger(__name__)

NAN_POLICIES = ("stop", "skip_batch")


def ema_with_warmup(decay: float):
    """``AveragedModel``'s update for an EMA whose decay warms up as ``min(decay, (1 + n) /
    (10 + n))`` over the n updates so far (as TensorFlow's ExponentialMovingAverage does).

    With a fixed 0.999 the average of a short run still holds 0.999^n of the random initial
    weights (30% after 1200 updates) and samples from it are noise; the warm-up forgets the
    first generators quickly and reaches ``decay`` after about 10 / (1 - decay) updates.

    The GAN itself updates the average with :func:`gan_lightning.modules.ema.update_ema` (the
    same arithmetic, without host reads); this function serves ``AveragedModel``'s own
    ``update_parameters``.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        lerp_all(averaged, current, ema_weight(n, decay))  # integer buffers: the newest count

    return update


def _check_label_range(name: str, value: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model.{name} must be a pair [low, high]; got {value!r}.") from err
    if not 0.0 <= low <= high <= 1.0:
        raise ConfigError(f"model.{name}={[low, high]} must satisfy 0 <= low <= high <= 1.")
    return low, high


def _check_range(key: str, value: Any, low: float, high: float | None = None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model.{key}={value!r} must be a number.") from err
    if not number >= low or (high is not None and not number <= high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"model.{key}={value!r} must be {bounds}.")
    return number


class GAN(GenerativeModule):
    """Generative adversarial network trained by Goodfellow's Algorithm 1 (and variants).

    Under DDP the D step leaves G without gradients and the G step leaves D without them
    (toggle_optimizer), so the reducer must look for unused parameters:
    ``ddp_find_unused_parameters_true`` (chosen for any multi-device run).

    Args:
        generator: maps z (N, latent_dim) [and labels (N,)] to images (N, *image_shape).
        discriminator: maps images [and labels] to logits (N,) (or (N, 1)) with ``forward``;
            an AC-GAN one also has ``extract``/``head``/``classify``
            (:mod:`gan_lightning.contracts`, docs/contract.md).
        optimizer_g / optimizer_d: optimizer factories (Hydra ``_partial_``) bound to each net;
            separate learning rates for G and D are TTUR (Heusel et al. 2017).
        d_steps / g_steps: k D updates per G update, or k G updates per D update.
        objective: ``non_saturating`` (default), ``minimax``, ``hinge`` or ``least_squares``.
        real_label_range / fake_label_range: D's targets; a point ``[0.9, 0.9]`` is one-sided
            label smoothing, a range ``[0.7, 1.0]`` draws noisy labels per sample (seed 003).
        pixel_range: the data's range; the generator's output activation must cover it.
        num_classes / conditioning: checks that both nets agree with ``model.num_classes``
            and ``model.conditioning`` (the nets read the same keys).
        acgan_weight: weight of the auxiliary classifier's loss (AC-GAN).
        ema_decay: EMA of G's weights (e.g. 0.999); ``None``: off.
        ema_start: real batches before the average starts (it copies G until then).
        sample_with_ema: samples, scores and gan-generate use the EMA generator.
        r1_gamma / r1_every: R1 weight (0: off) and its lazy interval in D steps.
        augment: DiffAugment policies, e.g. ``[color, translation, cutout]``.
        grad_clip: max gradient norm per net (``None``: no clipping).
        self_conditioning: a :class:`SelfConditioning` (``model/self_conditioning=pixels`` or
            ``discriminator``): the nets are conditional on ``num_classes`` = its clusters,
            real labels are cluster ids and the model itself is unconditional (no classes).
        on_nan: ``stop`` or ``skip_batch`` when a loss or gradient is not finite.
    """

    ddp_strategy = "ddp_find_unused_parameters_true"

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
        num_classes: int | None = None,
        conditioning: str | None = None,
        acgan_weight: float = 1.0,
        ema_decay: float | None = None,
        ema_start: int = 0,
        sample_with_ema: bool = True,
        r1_gamma: float = 0.0,
        r1_every: int = 16,
        augment: Sequence[str] | str | None = None,
        grad_clip: float | None = None,
        on_nan: str = "stop",
        self_conditioning: SelfConditioning | None = None,
    ) -> None:
        g_latent_dim = check_generator(generator, int(num_classes or 0))
        if latent_dim is not None and int(latent_dim) != g_latent_dim:
            raise ConfigError(
                f"model.latent_dim={latent_dim} but the generator takes {g_latent_dim}; "
                "set the generator's latent_dim to ${model.latent_dim}."
            )
        super().__init__(g_latent_dim, pixel_range, prior)
        self.automatic_optimization = False
        self.objective = check_objective(objective)
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
        self.schedule = UpdateSchedule(d_steps, g_steps)
        self.real_label_range = _check_label_range("real_label_range", real_label_range)
        self.fake_label_range = _check_label_range("fake_label_range", fake_label_range)
        smoothing = (self.real_label_range, self.fake_label_range) != ((1.0, 1.0), (0.0, 0.0))
        if smoothing and self.objective not in TARGETED_OBJECTIVES:
            raise ConfigError(
                f"model.objective={self.objective} has no targets, so label ranges "
                f"{list(self.real_label_range)}/{list(self.fake_label_range)} mean nothing; "
                "keep real_label_range=[1,1] and fake_label_range=[0,0]."
            )
        self._init_conditioning(num_classes, conditioning, acgan_weight)
        self.self_conditioning = self._init_self_conditioning(self_conditioning)
        # A packing D (PacGAN, ``model.discriminator.pack``) judges m images at once: R1 is
        # taken per pack and validation batches are cut to a multiple of m.
        pack = getattr(discriminator, "pack", 1)
        self.pack = pack if isinstance(pack, int) and not isinstance(pack, bool) and pack > 1 else 1
        self.augment = check_policy(augment)
        self.r1_gamma = _check_range("r1_gamma", r1_gamma, 0.0)
        self.r1_every = int(_check_range("r1_every", r1_every, 1))
        self.grad_clip = None if grad_clip is None else _check_range("grad_clip", grad_clip, 0.0)
        if self.grad_clip == 0.0:
            raise ConfigError("model.grad_clip=0 clips every gradient to nothing; use null (off).")
        if on_nan not in NAN_POLICIES:
            raise ConfigError(
                f"model.on_nan={on_nan!r} is not known; choose one of {NAN_POLICIES}."
            )
        self.on_nan = on_nan
        self.skipped_batches = 0
        self.nan_guard = NanGuard(on_nan)
        self.sample_with_ema = bool(sample_with_ema)
        self.ema_start = int(_check_range("ema_start", ema_start, 0))
        self.generator_ema: AveragedModel | None = None
        if ema_decay is not None:
            decay = self.ema_decay = _check_range("ema_decay", ema_decay, 0.0, 1.0)
            self.generator_ema = AveragedModel(
                generator, multi_avg_fn=ema_with_warmup(decay), use_buffers=True
            )
            self.generator_ema.requires_grad_(False)  # never optimised; DDP must ignore it

    def _init_conditioning(
        self, num_classes: int | None, conditioning: str | None, acgan_weight: float
    ) -> None:
        g_classes = int(getattr(self.generator, "num_classes", 0))
        d_classes = int(getattr(self.discriminator, "num_classes", 0))
        self.conditioning = getattr(self.discriminator, "conditioning", "none")
        expected = int(num_classes or 0)
        if g_classes != expected or d_classes != expected:
            raise ConfigError(
                f"model.num_classes={expected} but the generator takes {g_classes} classes and "
                f"the discriminator {d_classes}; set the nets' num_classes to ${{model.num_classes}}."
            )
        if (conditioning or "none") != self.conditioning:
            raise ConfigError(
                f"model.conditioning={conditioning!r} but the discriminator is "
                f"{self.conditioning!r}; set model.discriminator.conditioning to "
                "${model.conditioning}."
            )
        check_discriminator(self.discriminator, expected, self.conditioning)
        self.num_classes = expected
        self.acgan_weight = _check_range("acgan_weight", acgan_weight, 0.0)

    def _init_self_conditioning(self, module: Any) -> SelfConditioning | None:
        """Cluster ids become the nets' labels; the model has no classes of its own."""
        if module is None:
            return None
        if not isinstance(module, SelfConditioning):
            raise ConfigError(
                f"model.self_conditioning must be a SelfConditioning (model/self_conditioning="
                f"pixels or discriminator); got {type(module).__name__}."
            )
        if self.num_classes != module.clusters or self.conditioning == "none":
            raise ConfigError(
                f"model.self_conditioning.clusters={module.clusters} but the nets are built for "
                f"num_classes={self.num_classes} (conditioning={self.conditioning}); set "
                "model.num_classes=${model.self_conditioning.clusters} and a conditional D "
                "(model/self_conditioning=... does both)."
            )
        if module.features == "discriminator" and not all(
            callable(getattr(self.discriminator, name, None)) for name in ("extract", "head")
        ):
            raise ConfigError(
                "model.self_conditioning.features=discriminator clusters D's features, but "
                f"{type(self.discriminator).__name__} has no extract()/head() (docs/contract.md); "
                "use features=pixels."
            )
        self._conditions = self.num_classes
        self.num_classes = 0  # no classes: nothing asks the data for labels or scores agreement
        return module

    # ------------------------------------------------------------------ contract
    @property
    def num_conditions(self) -> int:
        """The nets' labels: classes, or a self-conditioned GAN's clusters."""
        return self._conditions if self.self_conditioning is not None else self.num_classes

    def sample_labels(
        self, n: int, generator: torch.Generator | None = None, device: Any = None
    ) -> torch.Tensor | None:
        """Classes drawn uniformly, or cluster ids drawn with the clusters' frequencies."""
        if self.self_conditioning is None:
            return super().sample_labels(n, generator, device)
        return self.self_conditioning.sample(n, generator, device or self.device)

    def default_labels(self, n: int) -> torch.Tensor | None:
        """Balanced classes; for a self-conditioned GAN, clusters with their frequencies."""
        if self.self_conditioning is None:
            return super().default_labels(n)
        return self.sample_labels(n)

    @property
    def sampler(self) -> nn.Module:
        """The generator that samples: the EMA copy when there is one (and it is wanted)."""
        if self.generator_ema is not None and self.sample_with_ema:
            return self.generator_ema.module
        return self.generator

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.sampler(z, labels) if self.num_conditions else self.sampler(z)

    def sampling_nets(self) -> list[nn.Module]:
        return [self.sampler]

    def optimizer_steps_for(self, n_batches: int) -> int:
        return self.schedule.optimizer_steps(n_batches)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, labels) if self.num_conditions else self.generator(z)

    def setup(self, stage: str) -> None:
        """Before training: conditional models get class labels from the data, and the nets
        fit the data (one probe pass of two samples through G and D, docs/contract.md)."""
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if self.num_classes and datamodule is not None:  # plain dataloaders: the caller's call
            data_classes = int(getattr(datamodule, "num_classes", 0) or 0)
            if data_classes != self.num_classes:
                raise ConfigError(
                    f"model.num_classes={self.num_classes} (conditioning={self.conditioning}) "
                    f"but the data provide {data_classes or 'no'} class labels; conditional GANs "
                    "train on labelled data such as data=mnist (10 classes)."
                )
        batch_size = getattr(datamodule, "batch_size", None)
        if self.pack > 1 and isinstance(batch_size, int) and batch_size % self.pack:
            raise ConfigError(
                f"model.discriminator.pack={self.pack} needs data.batch_size to be a multiple of "
                f"{self.pack}; got data.batch_size={batch_size}."
            )
        if stage == "fit":
            image_shape = check_datamodule(datamodule) if datamodule is not None else None
            probe_nets(self.generator, self.discriminator, image_shape, self.num_conditions)

    def extra_checkpoint_state(self) -> dict[str, Any]:
        return {**super().extra_checkpoint_state(), "skipped_batches": self.skipped_batches}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.nan_guard.read(self)  # a stopped run never saves; skipped batches counted
        super().on_save_checkpoint(checkpoint)

    def load_extra_checkpoint_state(self, state: dict[str, Any]) -> None:
        super().load_extra_checkpoint_state(state)
        self.skipped_batches = int(state.get("skipped_batches", 0))

    # ------------------------------------------------------------------ training
    def configure_optimizers(self):
        # Order matters: self.optimizers() returns (opt_g, opt_d) in training_step.
        return [
            self.optimizer_g(params=self.generator.parameters()),
            self.optimizer_d(params=self.discriminator.parameters()),
        ]

    def _discriminate(
        self, images: torch.Tensor, labels: torch.Tensor | None, track_input: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """D on (augmented) images: fp32 logits (N,), AC-GAN class logits or ``None``, the
        tensor D saw (with ``requires_grad`` when ``track_input``, for R1) and the labels used
        (real images of a GAN self-conditioned on D's features: their clusters in the features
        D computes here)."""
        if self.augment:
            images = diff_augment(images, self.augment)
        if track_input:
            images = images.detach().requires_grad_(True)
        classes = None
        from_features = labels is None and self.num_conditions > 0
        if self.conditioning == "acgan" or from_features:  # the heads share D's features
            features = self.discriminator.extract(images)
            if from_features:
                labels = self.self_conditioning.assign(features)
            logits = self.discriminator.head(features, labels)
            if self.conditioning == "acgan":
                classes = self.discriminator.classify(features).float()
        elif self.num_conditions:
            logits = self.discriminator(images, labels)
        else:  # a plain forward(x) -> logits, as in any PyTorch tutorial
            logits = self.discriminator(images)
        return as_logits(logits, images.shape[0]).float(), classes, images, labels

    def d_terms(
        self,
        real: torch.Tensor,
        real_labels: torch.Tensor | None,
        fake: torch.Tensor,
        fake_labels: torch.Tensor | None,
        regularise: bool = False,
        keep_fake: dict[str, Any] | None = None,
    ) -> dict[str, torch.Tensor]:
        """D's loss (and what to log) on a real batch and a *detached* fake batch; with
        ``regularise`` the R1 penalty is added (lazily weighted). ``keep_fake`` receives D's
        outputs on the fake batch (for :meth:`g_terms` where D gives the same again)."""
        real_logits, real_classes, seen, real_labels = self._discriminate(
            real, real_labels, regularise
        )
        fake_logits, fake_classes, _, _ = self._discriminate(fake, fake_labels)
        if keep_fake is not None:
            keep_fake.update(logits=fake_logits, classes=fake_classes)
        loss = discriminator_loss(
            real_logits,
            fake_logits,
            sample_targets(real_logits.shape[0], self.real_label_range, real_logits),
            sample_targets(fake_logits.shape[0], self.fake_label_range, fake_logits),
            self.objective,
        )
        terms = {
            "d_real": torch.sigmoid(real_logits.detach()).mean(),  # D(x)
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),  # D(G(z)) before the D step
        }
        if real_classes is not None:
            terms["d_class_loss"] = class_loss(real_classes, real_labels) + class_loss(
                fake_classes, fake_labels
            )
            loss = loss + self.acgan_weight * terms["d_class_loss"]
        if regularise:
            terms["r1"] = r1_penalty(real_logits, seen, self.pack)
            # Lazy regularisation (StyleGAN2): every r1_every D steps, weighted by the interval.
            loss = loss + 0.5 * self.r1_gamma * self.r1_every * terms["r1"]
        terms["d_loss"] = loss
        return terms

    def g_terms(
        self,
        fake: torch.Tensor,
        fake_labels: torch.Tensor | None,
        seen: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """G's loss (and what to log) through D, which is frozen in this step; ``seen``: D's
        outputs on ``fake`` already computed (``d_terms(keep_fake=...)``)."""
        if seen:
            fake_logits, fake_classes = seen["logits"], seen["classes"]
        else:
            fake_logits, fake_classes, _, _ = self._discriminate(fake, fake_labels)
        loss = generator_loss(fake_logits, self.objective)
        terms: dict[str, torch.Tensor] = {}
        if fake_classes is not None:
            terms["g_class_loss"] = class_loss(fake_classes, fake_labels)
            loss = loss + self.acgan_weight * terms["g_class_loss"]
        terms["g_loss"] = loss
        return terms

    #: Check ``on_nan`` on the device and read the verdicts back only at logging steps
    #: (:mod:`gan_lightning.modules.nan_guard`); ``None``: on accelerators, not on a CPU (where
    #: a host read is free and the error surfaces in the batch that caused it).
    defer_nan_checks: bool | None = None

    def defers_nan_checks(self) -> bool:
        if self.defer_nan_checks is not None:
            return self.defer_nan_checks
        return self.device.type != "cpu"

    def nan_read_every(self) -> int:
        """Batches between the NaN guard's host reads: Lightning's logging interval."""
        return max(1, int(self.trainer.log_every_n_steps)) if self._trainer is not None else 1

    def _update(
        self, optimizer: Any, loss: torch.Tensor, net: nn.Module, name: str, loss_name: str
    ) -> bool | torch.Tensor:
        """Backward, clip, check, step; ``False`` for a skipped update (no weight changes).
        Checked on the device (:class:`NanGuard`), it returns a 0-d tensor instead: 1.0
        where the update was applied, 0.0 where it was masked."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.grad_clip is not None:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm"
            )
        grads = [p.grad for p in net.parameters() if p.grad is not None]

        def total_norm() -> torch.Tensor:
            return torch.nn.utils.get_total_norm(grads) if grads else loss.new_zeros(())

        if self.nan_guard.can_defer(self, optimizer):  # no host sync: masked on the device
            return self.nan_guard.step(self, optimizer, name, loss, total_norm())
        # One host read per update: the price of never applying a NaN step (free on a CPU).
        # The test is GradScaler's one pass over the gradients; the norm only for the message.
        bad = any_nonfinite(grads) if grads else loss.new_zeros((), dtype=torch.float32)
        if bool(bad.to(loss.device) + torch.isfinite(loss.detach()).logical_not()):
            what = describe(loss_name, float(loss.detach()), float(total_norm()))
            if self.on_nan == "stop":
                raise NonFiniteError(
                    stop_message(loss_name, self.batches_seen, self.current_epoch, name, what)
                )
            # No gradient reaches any weight (torch optimizers skip parameters without one), but
            # the step is still counted, so trainer.max_steps stays a number of real batches.
            optimizer.zero_grad(set_to_none=True)
            optimizer.step()
            log.warning("Skipped the %s update of batch %d: %s", name, self.batches_seen, what)
            return False
        optimizer.step()
        return True

    def real_labels(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch's images and labels: the data's classes, a self-conditioned GAN's cluster
        ids in pixel space, or ``None`` (no classes, or clusters of D's features, found when D
        computes them)."""
        real = images_of(batch)
        if self.self_conditioning is not None:
            return real, self.self_conditioning.labels_for(real)
        return real, labels_of(batch) if self.num_classes else None

    # ------------------------------------------------------------------ self-conditioning
    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.self_conditioning is not None and not self.self_conditioning.fitted:
            self.cluster_real_images()  # a resumed run has its clusters from the checkpoint

    @torch.no_grad()
    def cluster_real_images(self) -> dict[str, float]:
        """(Re-)cluster the fixed subset of training images; every rank computes it and takes
        rank 0's result, so the ids mean the same on all of them."""
        clustering = self.self_conditioning
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if datamodule is None:
            raise ConfigError(
                "model.self_conditioning clusters the training images of a DataModule; pass "
                "datamodule= to trainer.fit (or train through gan-train)."
            )
        images = self._cluster_images(datamodule)
        extract = None
        if clustering.features == "discriminator":
            extract = self._discriminator_features
        logs = clustering.fit(images.to(self.device), extract)
        if self.trainer.world_size > 1:
            state = self.trainer.strategy.broadcast(
                {k: v.cpu() for k, v in clustering.state_dict().items()}, src=0
            )
            clustering.load_state_dict(state)
            clustering.to(self.device)
        kept = (
            ""
            if int(clustering.fits) == 1
            else (f"; {100 * logs['self_conditioning/kept']:.1f}% of the images kept their id")
        )
        log.info(
            "Self-conditioning: %d clusters of %d images (%s features) before batch %d; the "
            "smallest holds %.1f%%%s",
            clustering.clusters, images.shape[0], clustering.features, self.batches_seen,
            100 * logs["self_conditioning/smallest_share"], kept,
        )  # fmt: skip
        return logs

    def _cluster_images(self, datamodule: Any) -> torch.Tensor:
        """The seeded subset of training images, in the model's pixel range, cached."""
        cached = getattr(self, "_cluster_subset", None)
        if cached is not None:
            return cached
        from gan_lightning.metrics.images import real_batches
        from gan_lightning.utils.pixels import uint8_to_range

        clustering = self.self_conditioning
        batches, _ = real_batches(datamodule, "train", clustering.num_images, clustering.seed)
        parts = []
        for batch in batches:
            images = images_of(batch)
            if images.dtype == torch.uint8:
                images = uint8_to_range(images, self.pixel_range)
            parts.append(images.float())
        self._cluster_subset = torch.cat(parts)
        return self._cluster_subset

    def _discriminator_features(self, images: torch.Tensor) -> torch.Tensor:
        """D's features as training computes them (train mode), leaving D's buffers (BatchNorm
        running statistics) as they were."""
        saved = {name: b.clone() for name, b in self.discriminator.named_buffers()}
        try:
            return self.discriminator.extract(images)
        finally:
            for name, b in self.discriminator.named_buffers():
                b.copy_(saved[name])

    def training_step(self, batch: Any, batch_idx: int) -> None:
        clustering = self.self_conditioning
        if clustering is not None and clustering.due(self.batches_seen):
            self.log_dict(self.cluster_real_images(), on_step=True, on_epoch=False)
        real, real_labels = self.real_labels(batch)
        update_d, update_g = self.schedule.updates(self.batches_seen)
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]
        fake_labels = self.sample_labels(n)
        # One G forward per batch, shared by the D and G steps; no graph on D-only batches.
        # G's BatchNorm updates its running averages on every batch (docs/models.md).
        with torch.set_grad_enabled(update_g):
            fake = self(self.sample_latent(n), fake_labels)  # (N, *image_shape)
        logs: dict[str, torch.Tensor] = {}
        skipped = False

        if update_d:
            self.toggle_optimizer(opt_d)
            r1_due = self.r1_gamma > 0 and self.batches_seen % self.r1_every == 0
            terms = self.d_terms(real, real_labels, fake.detach(), fake_labels, r1_due)
            skipped |= (
                self._update(opt_d, terms["d_loss"], self.discriminator, "D", "d_loss") is False
            )
            self.untoggle_optimizer(opt_d)
            logs.update(terms)

        if update_g:
            self.toggle_optimizer(opt_g)
            terms = self.g_terms(fake, fake_labels)
            g_applied = self._update(opt_g, terms["g_loss"], self.generator, "G", "g_loss")
            self.untoggle_optimizer(opt_g)
            skipped |= g_applied is False
            logs.update(terms)
            if g_applied is not False and self.generator_ema is not None:
                self._update_ema(None if g_applied is True else g_applied)

        self.batches_seen += 1
        if skipped:
            self.skipped_batches += 1
        if self.batches_seen % self.nan_read_every() == 0:
            self.nan_guard.read(self)  # at Lightning's logging steps: a host read anyway
        self._log_train(logs, n)

    def precision_probe(self, images: torch.Tensor) -> torch.Tensor:
        """A loss of one training-like pass (G on z, D on real and fake images) that
        ``trainer.precision=auto`` times in fp32 and bf16 on a copy of this module."""
        images = images[: max(self.pack, images.shape[0] - images.shape[0] % self.pack)]
        n = images.shape[0]  # whole packs for a packing D
        labels = torch.zeros(n, dtype=torch.long) if self.num_conditions else None
        fake = self(self.sample_latent(n, device="cpu"), labels)
        both = torch.cat([images, fake])
        logits, _, _, _ = self._discriminate(both, None if labels is None else labels.repeat(2))
        return logits.mean()

    def _update_ema(self, applied: torch.Tensor | None = None) -> None:
        """Average from ``ema_start`` on; until then the EMA copy follows G exactly.
        ``applied``: G's update was masked on the device where it is 0 (then so is this one)."""
        ema = self.generator_ema
        if self.batches_seen < self.ema_start:  # the next update copies G again (n_averaged == 0)
            if applied is None:
                ema.n_averaged.zero_()
            else:
                ema.n_averaged.mul_(1 - applied.to(ema.n_averaged.dtype))
        update_ema(ema, self.generator, self.ema_decay, applied)

    def _log_train(self, logs: dict[str, torch.Tensor], batch_size: int) -> None:
        values = {f"train/{k}": v for k, v in logs.items()}
        self.log_train(values, batch_size, prog_bar=("train/d_loss", "train/g_loss"))

    def on_train_epoch_end(self) -> None:
        self.nan_guard.read(self)
        super().on_train_epoch_end()
        if self.on_nan == "skip_batch":  # the running count, once an epoch
            self.log("train/skipped_batches", float(self.skipped_batches), on_epoch=True)

    def on_train_end(self) -> None:
        self.nan_guard.read(self)  # a run that ends between logging steps

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        real, real_labels = self.real_labels(batch)
        if self.pack > 1:  # the last validation batch is not dropped: whole packs only
            keep = real.shape[0] - real.shape[0] % self.pack
            if keep == 0:
                return
            real = real[:keep]
            real_labels = real_labels[:keep] if real_labels is not None else None
        fake_labels = self.sample_labels(real.shape[0])
        fake = self.generate(self.sample_latent(real.shape[0]), fake_labels)
        # D in eval mode gives G's term the logits it gave D's, unless augmentation redraws.
        seen: dict[str, Any] | None = None if self.augment else {}
        out = self.d_terms(real, real_labels, fake, fake_labels, keep_fake=seen)
        out.update(self.g_terms(fake, fake_labels, seen))
        self.log_dict(
            {f"val/{k}": v for k, v in out.items()}, sync_dist=True, batch_size=real.shape[0]
        )
