"""Prototypes of proposed changes to the LightningModules, to measure them before anyone makes
them: each is a subclass swapped in with ``model._target_=benchmarks.prototypes.<Class>``.

They are measurement stand-ins, not replacements: they cover the default options only (no
EMA, no conditioning, no R1, no clipping), which is what the benchmark cases train.

* :class:`LeanLogGAN` / :class:`LeanLogVAE`: ``log_train`` keeps running sums on the device
  and calls ``self.log`` only every ``trainer.log_every_n_steps`` batches (the ``_step``
  values, which is when Lightning hands step values to the loggers anyway) and once per epoch
  (the ``_epoch`` means, synced over ranks as now), instead of two ``self.log`` calls per value
  per batch.
* :class:`LossCheckGAN`: the NaN guard checks the loss (a scalar) every update and the
  gradients' total norm only when clipping computes it anyway, instead of a norm over every
  gradient of the net on every update.
* :class:`LeanGAN`: both, and D frozen/unfrozen with ``requires_grad_`` instead of
  ``toggle_optimizer``/``untoggle_optimizer`` (which walk every optimizer's parameters twice).
"""

from __future__ import annotations

from typing import Any

import torch

from gan_lightning.errors import NonFiniteError
from gan_lightning.modules.gan import GAN
from gan_lightning.modules.vae import VAE


class LeanLogging:
    """``log_train`` with on-device running sums; ``self.log`` every N batches and per epoch."""

    _sums: dict[str, torch.Tensor]
    _count: int

    def log_train(
        self, values: dict[str, torch.Tensor], batch_size: int, prog_bar: Any = ()
    ) -> None:
        if not hasattr(self, "_sums"):
            self._sums, self._count = {}, 0
        for key, value in values.items():
            value = value.detach()
            if key in self._sums:
                self._sums[key].add_(value, alpha=batch_size)
            else:
                self._sums[key] = value * batch_size
        self._count += batch_size
        every = max(1, int(self.trainer.log_every_n_steps))
        if (self.batches_seen + 1) % every == 0:
            for key, value in values.items():
                self.log(f"{key}_step", value.detach(), on_step=True, on_epoch=False,
                         prog_bar=key in prog_bar)  # fmt: skip

    def on_train_epoch_end(self) -> None:
        if getattr(self, "_count", 0):
            means = {f"{k}_epoch": v / self._count for k, v in self._sums.items()}
            self.log_dict(means, on_step=False, on_epoch=True, sync_dist=True)
        self._sums, self._count = {}, 0


class LeanLogGAN(LeanLogging, GAN):
    pass


class LeanLogVAE(LeanLogging, VAE):
    pass


class LossCheckGAN(GAN):
    def _update(
        self, optimizer: Any, loss: torch.Tensor, net: torch.nn.Module, name: str, loss_name: str
    ) -> bool:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if not bool(torch.isfinite(loss.detach())):
            raise NonFiniteError(f"Non-finite {loss_name} at batch {self.batches_seen} ({name})")
        optimizer.step()
        return True


class LeanGAN(LeanLogging, LossCheckGAN):
    def toggle_optimizer(self, optimizer: Any) -> None:
        # Only D needs freezing (in the G step): the D step's fakes are detached already.
        if optimizer is self.optimizers()[0]:
            self.discriminator.requires_grad_(False)

    def untoggle_optimizer(self, optimizer: Any) -> None:
        self.discriminator.requires_grad_(True)
