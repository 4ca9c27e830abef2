"""What every generative LightningModule in the project offers callbacks and CLIs.

The contract (used by sample grids, metrics, the generate/evaluate CLIs):

* ``latent_dim`` and ``pixel_range`` attributes;
* :meth:`sample_latent` draws z from the model's prior (optionally with a seeded generator);
* :meth:`generate` maps z (and, for a class-conditional model, labels) to images in
  ``pixel_range``, in eval mode, without gradients and without touching BatchNorm running
  statistics;
* ``num_classes`` (0: unconditional) and :meth:`sample_labels` for conditional models;
* :meth:`optimizer_steps_for` converts a budget of real batches into Lightning's optimizer-step
  unit (see :mod:`gan_lightning.modules.schedule`);
* ``batches_seen``: real batches trained on so far (the project's step unit; pictures and
  curves are drawn against it), incremented by each module's ``training_step``, checkpointed;
* the resolved run config travels inside every checkpoint (``checkpoint["gan_lightning"]``) as
  plain containers, so checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch

from gan_lightning import __version__
from gan_lightning.errors import ConfigError, NonFiniteError
from gan_lightning.nets.priors import NormalPrior
from gan_lightning.utils.modes import eval_mode
from gan_lightning.utils.pixels import as_pixel_range

CHECKPOINT_KEY = "gan_lightning"
#: Bumped when a checkpoint written by this version cannot be read by an older one (or the
#: reverse); gan_lightning.checkpoints refuses other formats with the version that wrote them.
CHECKPOINT_FORMAT = 1

#: An optimizer factory (a Hydra ``_partial_``): the module binds it to its own parameters.
OptimizerFactory = Callable[..., torch.optim.Optimizer]


def check_optimizer(key: str, factory: OptimizerFactory) -> None:
    """A learning rate that is not > 0 trains nothing (or diverges): fail before training."""
    lr = (getattr(factory, "keywords", {}) or {}).get("lr")
    if lr is not None and not float(lr) > 0:
        raise ConfigError(f"model.{key}.lr must be > 0; got {lr}.")


class GenerativeModule(pl.LightningModule):
    #: Classes a conditional model generates (labels 0..num_classes-1); 0: unconditional.
    num_classes: int = 0

    def __init__(self, latent_dim: int, pixel_range: Sequence[float], prior: Any = None) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.pixel_range = as_pixel_range(pixel_range)
        self.prior = prior if prior is not None else NormalPrior()
        #: The resolved run config (a plain dict), set by ``train.run`` and saved in checkpoints.
        self.run_config: dict | None = None
        #: Real batches trained on so far (the project's unit of "step"); checkpointed.
        self.batches_seen = 0

    # ------------------------------------------------------------------ sampling contract
    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, device: Any = None
    ) -> torch.Tensor:
        """z ~ prior, shape (n, latent_dim). With ``generator`` it is drawn on the CPU (so the
        same seed gives the same z on every device) and then moved."""
        if generator is not None:
            return self.prior.sample((n, self.latent_dim), "cpu", generator).to(
                device or self.device
            )
        return self.prior.sample((n, self.latent_dim), device or self.device)

    def sample_labels(
        self, n: int, generator: torch.Generator | None = None, device: Any = None
    ) -> torch.Tensor | None:
        """Labels drawn uniformly from the classes (``None`` for an unconditional model); with
        ``generator`` drawn on the CPU like :meth:`sample_latent`."""
        if not self.num_classes:
            return None
        if generator is not None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator)
            return labels.to(device or self.device)
        return torch.randint(0, self.num_classes, (n,), device=device or self.device)

    def default_labels(self, n: int) -> torch.Tensor | None:
        """Balanced labels 0, 1, ..., K-1, 0, 1, ... for callers that name no class."""
        if not self.num_classes:
            return None
        return torch.arange(n, device=self.device) % self.num_classes

    def decode(
        self, z: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:  # pragma: no cover - contract
        """z (and labels) -> images in ``pixel_range``; GAN and VAE each define it."""
        raise NotImplementedError(
            f"{type(self).__name__} must define decode(z, labels) (see GenerativeModule)"
        )

    def sampling_nets(self) -> list[torch.nn.Module]:  # pragma: no cover - contract
        """The nets :meth:`generate` puts in eval mode; GAN and VAE each define it."""
        raise NotImplementedError(
            f"{type(self).__name__} must define sampling_nets() (see GenerativeModule)"
        )

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in ``pixel_range`` for latents ``z``, in eval mode (restored afterwards).

        A conditional model without ``labels`` draws the classes in turn (balanced)."""
        if labels is None:
            labels = self.default_labels(z.shape[0])
        elif not self.num_classes:
            raise ConfigError(f"{type(self).__name__} is not class-conditional; drop the labels.")
        with eval_mode(*self.sampling_nets()):
            labels = labels.to(self.device) if labels is not None else None
            return self.decode(z.to(self.device), labels).float()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.generate(self.sample_latent(n, generator), self.sample_labels(n, generator))

    def optimizer_steps_for(self, n_batches: int) -> int:
        return n_batches

    # ------------------------------------------------------------------ logging
    def log_train(
        self, values: dict[str, torch.Tensor], batch_size: int, prog_bar: Sequence[str] = ()
    ) -> None:
        """Log training values as ``<key>_step`` (this rank's value, every batch) and
        ``<key>_epoch`` (the mean over the epoch *and over all DDP ranks*).

        Lightning's ``on_step=True, on_epoch=True`` would either log rank 0's epoch mean
        (``sync_dist=False``) or all-reduce every metric on every batch (``sync_dist=True``);
        two entries give the exact epoch mean with one reduction per epoch.
        """
        for key, value in values.items():
            value = value.detach()
            shown = key in prog_bar
            self.log(f"{key}_step", value, on_step=True, on_epoch=False, prog_bar=shown)
            self.log(
                f"{key}_epoch", value, on_step=False, on_epoch=True, sync_dist=True,
                batch_size=batch_size,
            )  # fmt: skip

    # ------------------------------------------------------------------ checkpoints
    def extra_checkpoint_state(self) -> dict[str, Any]:
        """What a subclass keeps in ``checkpoint["gan_lightning"]`` besides the run config."""
        return {"batches_seen": self.batches_seen}

    def load_extra_checkpoint_state(self, state: dict[str, Any]) -> None:
        self.batches_seen = int(state.get("batches_seen", 0))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        bad = [name for name, value in checkpoint["state_dict"].items()
               if value.is_floating_point() and not bool(torch.isfinite(value).all())]  # fmt: skip
        if bad:  # never replace the last good checkpoint with a broken state
            raise NonFiniteError(
                f"Refusing to save a checkpoint at batch {self.batches_seen}: {bad[:3]} hold "
                "NaN/Inf values. The previous checkpoint is the last good state."
            )
        checkpoint[CHECKPOINT_KEY] = {
            "version": __version__,
            "format": CHECKPOINT_FORMAT,
            "config": self.run_config,
            "module": type(self).__module__ + "." + type(self).__qualname__,
            **self.extra_checkpoint_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            raise ConfigError(
                "This checkpoint was not written by gan-lightning (no 'gan_lightning' entry); "
                "pass a .ckpt from a gan-lightning run directory."
            )
        self.load_extra_checkpoint_state(state)
