"""The GAN's NaN guard (``model.on_nan``) without a host read per update on accelerators.

Today's contract, kept exactly: a non-finite loss or gradient norm either stops the run before
any weight changes (``stop``; the error names the batch, the net and the loss) or skips that
update and counts the batch (``skip_batch``).

Reading "is it finite?" back to the host after every update makes the CPU wait for the GPU
twice per batch. On an accelerator the guard therefore decides *on the device*:

* the verdict of each update (loss and gradient norm) is written into a small device
  window, one slot per batch since the last read;
* the optimizer step is masked by torch's own ``found_inf`` protocol (the one ``GradScaler``
  uses): a fused optimizer skips the whole update, its step counter included, when
  ``found_inf`` is 1. Under ``stop`` the flag is sticky: once a non-finite value was seen,
  every later update is masked too, so no weight changes after the bad batch;
* the window is read back at Lightning's logging steps (every ``trainer.log_every_n_steps``
  batches, when the logged values are read anyway), at the end of each epoch and before any
  checkpoint is written: ``stop`` raises there, naming the batch recorded in the window;
  ``skip_batch`` logs and counts the skipped batches there.

On a CPU a host read costs nothing, so the guard reads after every update as it always did
(the error then surfaces in the batch that caused it). There the test is GradScaler's one-pass
check of the gradients' values (``compat.any_nonfinite``, 2-2.5x cheaper than the norm, which
was ~6% of an MLP GAN's step) and the norm is computed only for the message. The one case the
two tests judge differently: gradients whose values are all finite but whose float32 norm
overflows (values around 1e19 and more): the norm called that non-finite, the value check lets
the update through. Optimizers without ``found_inf``
support (anything but torch's fused ones) and fp16 with a GradScaler (which owns
``found_inf``) also keep the read per update.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from gan_lightning.errors import NonFiniteError
from gan_lightning.runtime.compat import step_masked_by_found_inf, supports_found_inf

log = logging.getLogger("gan_lightning.modules.gan")

#: The window's second axis: the net whose update a verdict belongs to.
NETS = ("D", "G")
LOSSES = {"D": "d_loss", "G": "g_loss"}


def describe(loss_name: str, loss: float, norm: float) -> str:
    return f"{loss_name}={loss:.4g}, grad norm {norm:.4g}"


def stop_message(loss_name: str, batch: int, epoch: int, net: str, what: str) -> str:
    return (
        f"Non-finite {loss_name} at batch {batch} (epoch {epoch}) in the {net}: {what}. "
        "Nothing was applied and the last checkpoint is the last good state; lower the "
        "learning rates, set model.grad_clip, or model.on_nan=skip_batch to skip such updates."
    )


class NanGuard:
    """The device-side half of ``on_nan``: verdicts per update, masked steps, deferred reads.

    Not an ``nn.Module``: it holds no state a checkpoint needs (it is read back, and its
    findings folded into the module's ``skipped_batches``, before every checkpoint)."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.window: torch.Tensor | None = None  # (slots, len(NETS), 2): loss, grad norm
        self.halted: torch.Tensor | None = None  # stop: sticky 0-d float, 1 = mask every step
        self.first_batch = 0  # batches_seen of slot 0
        self.pending = False  # something was written since the last read

    def can_defer(self, module: Any, optimizer: Any) -> bool:
        """Whether this update can be checked on the device: the module asks for it (on
        accelerators by default), the optimizer honours ``found_inf`` and no GradScaler owns
        it."""
        if not module.defers_nan_checks():
            return False
        trainer = module._trainer
        plugin = getattr(trainer, "precision_plugin", None) if trainer is not None else None
        if getattr(plugin, "scaler", None) is not None:
            return False
        return supports_found_inf(getattr(optimizer, "optimizer", optimizer))

    def step(
        self,
        module: Any,
        optimizer: Any,
        net: str,
        loss: torch.Tensor,
        norm: torch.Tensor,
    ) -> torch.Tensor:
        """Record the verdict of ``net``'s update at this batch and step ``optimizer`` masked
        by it; returns 1.0 where the update was applied, 0.0 where not (on the device)."""
        batch, every = module.batches_seen, module.nan_read_every()
        if (
            self.window is None
            or self.window.shape[0] != every
            or self.window.device != loss.device
        ):
            self.read(module)
            self.window = loss.new_zeros((every, len(NETS), 2), dtype=torch.float32)
        if self.pending and batch - self.first_batch >= every:
            self.read(module)
        if not self.pending:
            self.first_batch, self.pending = batch, True
        values = torch.stack((loss.detach().float(), norm.detach().float()))
        self.window[batch - self.first_batch, NETS.index(net)].copy_(values)
        found_inf = torch.isfinite(values).all().logical_not().float()
        if self.policy == "stop":
            self.halted = (
                found_inf if self.halted is None else torch.maximum(self.halted, found_inf)
            )
            found_inf = self.halted
        with step_masked_by_found_inf(getattr(optimizer, "optimizer", optimizer), found_inf):
            optimizer.step()
        return 1.0 - found_inf

    def read(self, module: Any) -> None:
        """Fold the window's verdicts in (one host read): raise under ``stop``, log and count
        skipped batches under ``skip_batch``."""
        if not self.pending or self.window is None:
            return
        values = self.window.to("cpu", copy=True)  # the one host sync, at a logging step
        self.window.zero_()
        self.pending = False
        bad = ~torch.isfinite(values).all(dim=2)  # (slots, nets)
        if not bool(bad.any()):
            return
        skipped = 0
        for slot in range(values.shape[0]):
            if not bool(bad[slot].any()):
                continue
            batch = self.first_batch + slot
            for index, net in enumerate(NETS):
                if not bool(bad[slot, index]):
                    continue
                loss, norm = (float(v) for v in values[slot, index])
                what = describe(LOSSES[net], loss, norm)
                if self.policy == "stop":
                    raise NonFiniteError(
                        stop_message(LOSSES[net], batch, module.current_epoch, net, what)
                    )
                log.warning("Skipped the %s update of batch %d: %s", net, batch, what)
            skipped += 1
        module.skipped_batches += skipped
