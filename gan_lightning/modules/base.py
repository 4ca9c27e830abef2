"""What every generative LightningModule in the project offers callbacks and CLIs.

The contract (used by sample grids, metrics, the generate/evaluate CLIs):

* ``latent_dim`` and ``pixel_range`` attributes;
* :meth:`sample_latent` draws z from the model's prior (optionally with a seeded generator);
* :meth:`generate` maps z to images in ``pixel_range``, in eval mode, without gradients and
  without touching BatchNorm running statistics;
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
from gan_lightning.errors import ConfigError
from gan_lightning.nets.priors import NormalPrior
from gan_lightning.utils.modes import eval_mode
from gan_lightning.utils.pixels import as_pixel_range

CHECKPOINT_KEY = "gan_lightning"

#: An optimizer factory (a Hydra ``_partial_``): the module binds it to its own parameters.
OptimizerFactory = Callable[..., torch.optim.Optimizer]


def check_optimizer(key: str, factory: OptimizerFactory) -> None:
    """A learning rate that is not > 0 trains nothing (or diverges): fail before training."""
    lr = (getattr(factory, "keywords", {}) or {}).get("lr")
    if lr is not None and not float(lr) > 0:
        raise ConfigError(f"model.{key}.lr must be > 0; got {lr}.")


class GenerativeModule(pl.LightningModule):
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

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - contract
        """z -> images in ``pixel_range``; GAN and VAE each define it."""
        raise NotImplementedError(
            f"{type(self).__name__} must define decode(z) (see GenerativeModule)"
        )

    def sampling_nets(self) -> list[torch.nn.Module]:  # pragma: no cover - contract
        """The nets :meth:`generate` puts in eval mode; GAN and VAE each define it."""
        raise NotImplementedError(
            f"{type(self).__name__} must define sampling_nets() (see GenerativeModule)"
        )

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in ``pixel_range`` for latents ``z``, in eval mode (restored afterwards)."""
        with eval_mode(*self.sampling_nets()):
            return self.decode(z.to(self.device)).float()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.generate(self.sample_latent(n, generator))

    def optimizer_steps_for(self, n_batches: int) -> int:
        return n_batches

    # ------------------------------------------------------------------ checkpoints
    def extra_checkpoint_state(self) -> dict[str, Any]:
        """What a subclass keeps in ``checkpoint["gan_lightning"]`` besides the run config."""
        return {"batches_seen": self.batches_seen}

    def load_extra_checkpoint_state(self, state: dict[str, Any]) -> None:
        self.batches_seen = int(state.get("batches_seen", 0))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "version": __version__,
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
