"""The NaN guard checked on the device (as on GPUs): the same outcomes as the per-update host
read, no host synchronisation on batches between logging steps, and an EMA that needs none.

The device path runs on the CPU here with ``GAN.defer_nan_checks = True`` (on a CPU the
default reads after every update, which costs nothing there)."""

from __future__ import annotations

import functools
from collections import Counter

import pytest
import pytorch_lightning as pl
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gan_lightning.errors import NonFiniteError
from gan_lightning.modules.ema import update_ema
from gan_lightning.modules.gan import GAN, ema_with_warmup
from gan_lightning.nets.mlp import MLPDiscriminator, MLPGenerator
from tests.helpers import fit_tiny

#: The ops behind ``.item()``, ``bool(t)``, ``float(t)``: a host read of a device value.
HOST_READS = {"_local_scalar_dense", "item", "is_nonzero"}


def fused_gan(defer: bool, **kwargs) -> GAN:
    """An MLP GAN (BatchNorm in G) with torch's fused Adam, the project's default optimizer."""
    torch.manual_seed(0)
    adam = functools.partial(torch.optim.Adam, lr=1e-3, fused=True)
    model = GAN(
        generator=MLPGenerator(latent_dim=4, image_shape=(1, 4, 4), hidden_sizes=[8, 8]),
        discriminator=MLPDiscriminator(image_shape=(1, 4, 4), hidden_sizes=[8]),
        optimizer_g=adam,
        optimizer_d=adam,
        **kwargs,
    )
    model.defer_nan_checks = defer
    return model


def fit(model: GAN, batches: int, *callbacks, log_every: int = 50) -> pl.Trainer:
    return fit_tiny(model, batches, *callbacks, log_every=log_every)


def poison(model: GAN, at_batch: int, net: str = "D") -> GAN:
    """D's features turn NaN on batch ``at_batch``: in D's step (``net="D"``) or only in G's
    step, where D is frozen (``"G"``)."""
    extract, d = model.discriminator.extract, model.discriminator

    def nan_on(x):
        in_g_step = not next(d.parameters()).requires_grad
        due = model.batches_seen == at_batch and (in_g_step == (net == "G"))
        return extract(x) * (float("nan") if due else 1.0)

    model.discriminator.extract = nan_on
    return model


def snapshot(model: GAN) -> dict[str, list[torch.Tensor]]:
    """G's and D's parameters and the EMA copy's whole state (its buffers and count too)."""
    return {
        "G": [p.detach().clone() for p in model.generator.parameters()],
        "D": [p.detach().clone() for p in model.discriminator.parameters()],
        "EMA": [t.clone() for t in model.generator_ema.state_dict().values()],
    }


class Weights(pl.Callback):
    """:func:`snapshot` after every batch."""

    def __init__(self) -> None:
        self.after: list[dict[str, list[torch.Tensor]]] = []

    def on_train_batch_end(self, trainer, pl_module, *args):
        self.after.append(snapshot(pl_module))


def state(model: GAN) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("ema", [None, 0.5])
def test_device_checks_train_bit_identically_to_host_checks(ema):
    runs = []
    for defer in (False, True):
        model = fused_gan(defer, ema_decay=ema, ema_start=2)
        fit(model, 6, log_every=4)
        runs.append(state(model))
    assert_same(*runs)


def host_side_ema(decay: float):
    """The EMA update as it was computed before (the warm-up decay from ``float(n)``)."""

    @torch.no_grad()
    def update(averaged, current, n):
        count = float(n)
        step = min(decay, (1.0 + count) / (10.0 + count))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - step)
        else:
            for target, source in zip(averaged, current, strict=True):
                target.copy_(source)

    return update


@pytest.mark.parametrize("decay", [0.9, 0.999])
def test_device_ema_is_bit_identical_to_the_host_side_recursion(decay):
    torch.manual_seed(0)
    g = MLPGenerator(latent_dim=4, image_shape=(1, 4, 4), hidden_sizes=[8, 8])
    assert any(b.is_floating_point() for b in g.buffers())  # BatchNorm statistics too
    average = functools.partial(torch.optim.swa_utils.AveragedModel, g, use_buffers=True)
    mine, theirs = (
        average(multi_avg_fn=ema_with_warmup(decay)),
        average(multi_avg_fn=host_side_ema(decay)),
    )
    for _ in range(30):
        with torch.no_grad():
            for t in (*g.parameters(), *g.buffers()):
                t.add_(torch.randn_like(t) if t.is_floating_point() else torch.ones_like(t))
        update_ema(mine, g, decay)
        theirs.update_parameters(g)
        assert_same(list(mine.state_dict().values()), list(theirs.state_dict().values()))
    update_ema(mine, g, decay, applied=torch.zeros(()))  # a masked update changes nothing
    assert_same(list(mine.state_dict().values()), list(theirs.state_dict().values()))


@pytest.mark.parametrize("net, loss", [("D", "d_loss"), ("G", "g_loss")])
def test_stop_on_the_device_names_the_batch_and_applies_nothing_after_it(net, loss):
    model = poison(fused_gan(True, ema_decay=0.5), at_batch=2, net=net)
    weights = Weights()
    with pytest.raises(NonFiniteError) as err:
        fit(model, 5, weights)  # no logging step before the end: read at the epoch's end
    message = str(err.value)
    assert "batch 2 " in message and loss in message and f"in the {net}" in message
    assert len(weights.after) == 5  # batches 2-4 ran, every update masked on the device
    now, good = snapshot(model), weights.after[1]
    # Nothing changed after the non-finite update: not G, not the EMA, and not D, except by
    # D's own update of batch 2 when only G's turned NaN (it came first and was finite).
    for key in ("G", "EMA") if net == "G" else ("G", "D", "EMA"):
        assert_same(now[key], good[key])
    if net == "G":
        assert_same(now["D"], weights.after[2]["D"])
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_skip_on_the_device_counts_and_matches_the_host_path(caplog):
    runs, counts = [], []
    for defer in (False, True):
        model = poison(fused_gan(defer, on_nan="skip_batch", ema_decay=0.5), at_batch=1)
        trainer = fit(model, 4)
        runs.append(state(model))
        counts.append(
            (model.skipped_batches, float(trainer.callback_metrics["train/skipped_batches"]))
        )
    assert counts == [(1, 1.0), (1, 1.0)]
    assert_same(*runs)
    assert "Skipped the D update of batch 1" in caplog.text


class HostReads(pl.Callback):
    """Counts host reads per training batch (fetch, hooks, step, callbacks: everything from
    the end of one batch to the end of the next) with a dispatch mode over the whole fit."""

    def __init__(self) -> None:
        self.per_batch: list[int] = []
        self.seen: Counter = Counter()
        outer = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func.overloadpacket.__name__ in HOST_READS:
                    outer.seen[func.overloadpacket.__name__] += 1
                return func(*args, **(kwargs or {}))

        self.mode = Mode()
        self.last = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self.mode.__enter__()
            self.last = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        total = sum(self.seen.values())
        self.per_batch.append(total - self.last)
        self.last = total

    def on_train_end(self, trainer, pl_module):
        self.mode.__exit__(None, None, None)


def test_no_host_sync_per_batch_between_logging_steps():
    """A GAN with EMA and the NaN guard on, checked on the device: no host reads at all on
    batches that are not logging steps (Lightning logs every 4 batches here)."""
    model = fused_gan(True, ema_decay=0.999)
    reads = HostReads()
    fit(model, 12, reads, log_every=4)
    quiet = [n for batch, n in enumerate(reads.per_batch) if (batch + 1) % 4 and batch > 0]
    assert len(quiet) >= 7
    assert quiet == [0] * len(quiet), (reads.per_batch, reads.seen)


def test_host_checks_read_back_every_update():
    """The counter above does see host reads: the per-update check of the CPU default."""
    model = fused_gan(False, ema_decay=0.999)
    reads = HostReads()
    fit(model, 6, reads, log_every=4)
    assert all(n >= 2 for n in reads.per_batch[1:3]), reads.per_batch


#: What HostReads of the last :func:`gan_lightning.train.run` saw (Hydra builds the callback).
LAST_READS: list[HostReads] = []


class RecordedHostReads(HostReads):
    def __init__(self) -> None:
        super().__init__()
        LAST_READS[:] = [self]


def test_the_default_callbacks_and_logger_add_no_host_sync_per_batch(
    mnist_dir, tmp_path, monkeypatch
):
    """``train.run`` with the default callbacks (checkpoints, pictures, curves, learning rates,
    progress lines, metrics), a logger, EMA and the NaN guard checked on the device: still no
    host read between logging steps (every 8 batches here)."""
    from omegaconf import open_dict

    from gan_lightning.train import run
    from tests.conftest import compose_config

    monkeypatch.setattr(GAN, "defer_nan_checks", True)
    cfg = compose_config(
        [
            "model.ema_decay=0.999",
            "callbacks.progress.style=lines",
            "logger=csv",
            "trainer.limit_val_batches=0",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=24",
            "trainer.log_every_n_steps=8",
            "trainer.precision=32-true",
        ],
        tmp_path,
    )
    with open_dict(cfg):
        cfg.callbacks.zz_host_reads = {"_target_": f"{__name__}.RecordedHostReads"}
    run(cfg)
    per_batch = LAST_READS[0].per_batch
    quiet = [n for batch, n in enumerate(per_batch) if batch % 8 not in (0, 7)]
    assert len(per_batch) == 24 and len(quiet) == 18
    assert quiet == [0] * len(quiet), per_batch
