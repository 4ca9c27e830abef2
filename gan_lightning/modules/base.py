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

import random
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from gan_lightning import __version__
from gan_lightning.errors import ConfigError, NonFiniteError
from gan_lightning.nets.priors import NormalPrior
from gan_lightning.runtime.compat import epoch_done
from gan_lightning.utils.modes import eval_mode
from gan_lightning.utils.pixels import as_pixel_range

# Epoch values this module logs are already averaged over the ranks (log_epoch_means), and
# the learning rates are the same on every rank: Lightning's advice to add sync_dist=True to
# them would only add a lazy collective (see log_epoch_means).
warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting")

CHECKPOINT_KEY = "gan_lightning"
#: Bumped when a checkpoint written by this version cannot be read by an older one (or the
#: reverse); gan_lightning.runtime.checkpoints refuses other formats with the version that wrote them.
CHECKPOINT_FORMAT = 1

#: An optimizer factory (a Hydra ``_partial_``): the module binds it to its own parameters.
OptimizerFactory = Callable[..., torch.optim.Optimizer]


def check_optimizer(key: str, factory: OptimizerFactory) -> None:
    """A learning rate that is not > 0 trains nothing (or diverges): fail before training."""
    lr = (getattr(factory, "keywords", {}) or {}).get("lr")
    if lr is None:
        return
    try:
        positive = float(lr) > 0
    except (TypeError, ValueError):
        positive = False
    if not positive:
        raise ConfigError(f"model.{key}.lr must be a number > 0; got {lr!r}.")


def capture_rng(module: pl.LightningModule | None = None) -> dict[str, Any]:
    """Every random stream training draws from, as tensors and plain containers (so the
    checkpoint still loads with ``weights_only=True``): torch's CPU generator and the CUDA
    generator of the device this process trains on (one row per DDP rank: each rank draws its
    own noise), numpy, Python.

    Only the current device's CUDA state is kept, not ``get_rng_state_all()``: a rank uses one
    device, and a checkpoint must resume on a machine with fewer (or other) visible GPUs."""
    trainer = getattr(module, "_trainer", None)
    several = trainer is not None and trainer.world_size > 1

    def per_rank(state: torch.Tensor) -> torch.Tensor:
        # (world_size, n) under DDP: every rank takes part, rank 0 writes them all.
        return module.all_gather(state).cpu() if several else state

    torch_state = per_rank(torch.get_rng_state())
    on_cuda = (
        module.device.type == "cuda"
        if module is not None
        else torch.cuda.is_available() and torch.cuda.is_initialized()
    )
    cuda_state = per_rank(torch.cuda.get_rng_state()) if on_cuda else []
    keys, position, has_gauss, cached = np.random.get_state()[1:]
    version, mt_state, gauss_next = random.getstate()
    return {
        "torch": torch_state,
        "cuda": cuda_state,
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [int(version), [int(v) for v in mt_state], gauss_next],
    }


def seed_rank_stream(rank: int) -> None:
    """Reseed this process's generators (CPU and CUDA) for DDP rank ``rank``, from the seed
    every rank shares: deterministic in the run's seed, different on every rank."""
    torch.manual_seed(torch.initial_seed() + 1_000_003 * int(rank))


def own_state(saved: Any, rank: int) -> torch.Tensor | None:
    """This rank's row of a saved generator state: ``(world_size, n)`` from a DDP run, ``(n,)``
    from one process, or (checkpoints before per-rank CUDA states) a list with one state per
    device the run saw. ``None`` when the checkpoint holds no state for this rank: a run
    resumed on more processes than wrote it keeps the fresh per-rank stream
    :meth:`GenerativeModule.on_fit_start` gave it, rather than a copy of another rank's."""
    if isinstance(saved, (list, tuple)):
        row = saved[rank] if rank < len(saved) else None
    elif not isinstance(saved, torch.Tensor) or saved.numel() == 0:
        row = None
    elif saved.dim() == 2:
        row = saved[rank] if rank < saved.shape[0] else None
    else:
        row = saved if rank == 0 else None
    # A copy of its own: torch.set_rng_state of a row view (storage offset > 0) segfaults.
    return None if row is None else row.clone()


def restore_rng(state: dict[str, Any], rank: int = 0) -> None:
    """Set every random stream to what :func:`capture_rng` saved (this rank's, under DDP);
    the CUDA state goes to the current device only, however many devices are visible."""
    torch_state = own_state(state["torch"], rank)
    if torch_state is not None:
        torch.set_rng_state(torch_state)
    cuda_state = own_state(state.get("cuda"), rank)
    if cuda_state is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda_state)
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, mt_state, gauss_next = state["python"]
    random.setstate((version, tuple(mt_state), gauss_next))


class GenerativeModule(pl.LightningModule):
    #: Classes a conditional model generates (labels 0..num_classes-1); 0: unconditional.
    num_classes: int = 0
    #: The DDP strategy train.py picks when several devices are asked for with
    #: ``strategy=auto``: plain DDP for one loss and one backward pass per step.
    ddp_strategy: str = "ddp"

    #: Plain attributes set many times per batch: Lightning's hook name (around each of the
    #: ~20 hook calls of a batch) and the batch counter.
    _PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "batches_seen"})

    def __setattr__(self, name: str, value: Any) -> None:
        """``nn.Module.__setattr__`` checks every assignment against parameters, submodules and
        buffers (~10 isinstance checks each, ~40 assignments a batch); for the plain attributes
        above, holding a str, None or int, it ends in ``object.__setattr__`` anyway."""
        if name in self._PLAIN_ATTRIBUTES and (value is None or type(value) in (str, int)):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def __init__(self, latent_dim: int, pixel_range: Sequence[float], prior: Any = None) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.pixel_range = as_pixel_range(pixel_range)
        self.prior = prior if prior is not None else NormalPrior()
        #: The resolved run config (a plain dict), set by ``train.run`` and saved in checkpoints.
        self.run_config: dict | None = None
        #: Real batches trained on so far (the project's unit of "step"); checkpointed.
        self.batches_seen = 0
        self._rng_to_restore: dict[str, Any] | None = None
        self._train_sums: dict[str, list] = {}  # key -> [sum on device, count] this epoch
        #: What progress bars show (``train/d_loss_step`` -> number), read back at logging steps.
        self.progress_values: dict[str, float] = {}

    @property
    def num_conditions(self) -> int:
        """Distinct labels the sampler takes: the classes of a conditional model (the clusters
        of a self-conditioned GAN, which has no classes); 0: it takes none."""
        return int(self.num_classes or 0)

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
        """Labels drawn uniformly from the classes (``None`` for a model that takes none); with
        ``generator`` drawn on the CPU like :meth:`sample_latent`."""
        if not self.num_conditions:
            return None
        if generator is not None:
            labels = torch.randint(0, self.num_conditions, (n,), generator=generator)
            return labels.to(device or self.device)
        return torch.randint(0, self.num_conditions, (n,), device=device or self.device)

    def default_labels(self, n: int) -> torch.Tensor | None:
        """Balanced labels 0, 1, ..., K-1, 0, 1, ... for callers that name no class."""
        if not self.num_conditions:
            return None
        return torch.arange(n, device=self.device) % self.num_conditions

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
        elif not self.num_conditions:
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
        """Log training values as ``<key>_step`` (this rank's value, at Lightning's logging
        steps) and ``<key>_epoch`` (the mean over the epoch *and over all DDP ranks*).

        Every ``self.log`` call costs tens of microseconds of bookkeeping, and Lightning's
        ``on_step=True, on_epoch=True`` would also either log rank 0's epoch mean
        (``sync_dist=False``) or all-reduce every metric on every batch (``sync_dist=True``).
        Instead the values are summed on their device every batch (no host sync), handed to
        ``self.log`` only every ``trainer.log_every_n_steps`` batches (when Lightning writes
        step values to the loggers anyway), and the epoch means are logged once per epoch
        with one reduction across ranks (:meth:`on_train_epoch_end`). The ``prog_bar`` values
        are read back to the host here, once per logging step, into :attr:`progress_values`
        (the project's progress bars show them): logged with Lightning's ``prog_bar=True`` they
        would be converted to numbers after every batch, a host sync each on a GPU."""
        for key, value in values.items():
            value = value.detach()
            if key in self._train_sums:
                self._train_sums[key][0].add_(value)
                self._train_sums[key][1] += 1
            else:
                self._train_sums[key] = [value.clone().float(), 1]
        every = max(1, int(self.trainer.log_every_n_steps)) if self._trainer is not None else 1
        if self.batches_seen % every == 0:
            shown = [key for key in values if key in prog_bar]
            if shown:  # one host read for all of them, at a logging step
                numbers = torch.stack([values[k].detach().float() for k in shown]).tolist()
                self.progress_values = {f"{k}_step": v for k, v in zip(shown, numbers, strict=True)}
            for key, value in values.items():
                self.log(
                    f"{key}_step", value.detach(), on_step=True, on_epoch=False,
                    batch_size=batch_size,
                )  # fmt: skip

    def log_epoch_means(self) -> None:
        """The epoch means of what :meth:`log_train` collected, averaged over DDP ranks.

        The average is taken here, by every rank at once (one all-reduce), and logged as a
        plain value: with Lightning's ``sync_dist=True`` the reduction would happen lazily on
        the first read of ``trainer.callback_metrics``, and a rank-zero-only callback reading
        them at the epoch end would wait forever for the other ranks."""
        if not self._train_sums:
            return
        keys = sorted(self._train_sums)
        means = torch.stack([self._train_sums[k][0] / self._train_sums[k][1] for k in keys])
        world = self.trainer.world_size if self._trainer is not None else 1
        if world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(means)
            means = means / world
        for key, value in zip(keys, means, strict=True):
            self.log(f"{key}_epoch", value, on_step=False, on_epoch=True)
        self._train_sums = {}

    # ------------------------------------------------------------------ randomness
    def on_fit_start(self) -> None:
        """Under DDP every rank was seeded alike; give each its own noise stream (deterministic
        in the seed), or every rank would train on the same latents."""
        if self.trainer.world_size > 1:
            seed_rank_stream(self.global_rank)

    def sync_buffers(self) -> None:
        """Under DDP, give every rank rank 0's buffers (BatchNorm statistics, the EMA copy's).

        DDP broadcasts buffers at the start of each training forward, so after a batch each
        rank holds statistics of its own data; before anything is evaluated or checkpointed
        (and at the end) all ranks are made to agree, one collective per epoch."""
        if self._trainer is None or self.trainer.world_size <= 1:
            return
        if not torch.distributed.is_available() or not torch.distributed.is_initialized():
            return
        for buffer in self.buffers():
            torch.distributed.broadcast(buffer, src=0)

    def on_validation_start(self) -> None:
        self.sync_buffers()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # The epoch's last batch: log the means now, so the epoch-end hooks of callbacks
        # (progress lines, curves), which Lightning runs before this module's, see them.
        if epoch_done(self.trainer):
            self.log_epoch_means()

    def on_train_epoch_end(self) -> None:
        self.log_epoch_means()  # anything not logged yet (an epoch stopped by a callback)
        self.sync_buffers()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # After a resume, the random streams continue exactly where the checkpoint left them:
        # restored here, after the sanity check and the data loader setup that used them.
        if self._rng_to_restore is not None:
            restore_rng(self._rng_to_restore, self.global_rank)
            self._rng_to_restore = None

    # ------------------------------------------------------------------ checkpoints
    def extra_checkpoint_state(self) -> dict[str, Any]:
        """What a subclass keeps in ``checkpoint["gan_lightning"]`` besides the run config."""
        return {"batches_seen": self.batches_seen, "rng": capture_rng(self)}

    def load_extra_checkpoint_state(self, state: dict[str, Any]) -> None:
        self.batches_seen = int(state.get("batches_seen", 0))
        self._rng_to_restore = state.get("rng")

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
            "wandb_run_id": self._wandb_run_id(),
            "config": self.run_config,
            "module": type(self).__module__ + "." + type(self).__qualname__,
            **self.extra_checkpoint_state(),
        }

    def _wandb_run_id(self) -> str | None:
        """The id of the W&B run this training logs to (resume=auto continues it)."""
        from pytorch_lightning.loggers import WandbLogger

        from gan_lightning.runtime.compat import wandb_started_run

        for logger in getattr(self._trainer, "loggers", None) or []:
            run = wandb_started_run(logger) if isinstance(logger, WandbLogger) else None
            if run is not None and getattr(run, "id", None):
                return str(run.id)
        return None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            raise ConfigError(
                "This checkpoint was not written by gan-lightning (no 'gan_lightning' entry); "
                "pass a .ckpt from a gan-lightning run directory."
            )
        self.load_extra_checkpoint_state(state)
