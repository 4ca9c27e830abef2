"""The reference: a plain PyTorch training loop over the project's own net classes.

It trains what the LightningModules train, without Lightning: the same nets and optimizer
factories built from the same Hydra config (:func:`benchmarks.cases.build_nets`), the same
loss functions (:mod:`gan_lightning.losses`), the same update order, and the same in-memory
uint8 MNIST tensors scaled per batch the way the DataModule scales them
(:func:`gan_lightning.utils.pixels.uint8_to_range`). What it leaves out is exactly what the
framework adds: hooks, the result collection behind ``self.log``, callbacks, loggers, the
progress bar, ``toggle_optimizer``'s bookkeeping.

The GAN step mirrors ``GAN.training_step`` for ``d_steps = g_steps = 1``: one G forward per
batch, a D step on the detached fakes, then a G step through D with D's parameters frozen
(what ``toggle_optimizer`` does), ``zero_grad(set_to_none=True)``; convolutional nets in
channels_last as the project's default ``MemoryFormat`` callback puts them. :class:`Options` switches
each of those choices (and channels_last, torch.compile, fused/foreach Adam, bf16 autocast)
so the benchmark can measure what each one is worth.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from benchmarks.cases import CaseData, build_nets
from gan_lightning.losses import (
    discriminator_loss,
    generator_loss,
    kl_divergence,
    reconstruction_loss,
    sample_targets,
)
from gan_lightning.utils.pixels import from_unit, to_unit, uint8_to_range


@dataclass(frozen=True)
class Options:
    """One variant of the plain loop. The defaults are the module's own algorithm."""

    set_to_none: bool = True  #: ``zero_grad(set_to_none=True)`` (else zero-filled grads)
    freeze_d: bool = True  #: D's parameters frozen in the G step (no D weight gradients)
    g_forward_once: bool = True  #: one G forward shared by D and G steps (else two)
    #: conv nets and their inputs in NHWC; ``None``: as the project's default MemoryFormat
    #: callback does (channels_last when the nets have convolutions)
    channels_last: bool | None = None
    compile: bool = False  #: ``torch.compile`` each net (the compile time is reported)
    adam: str = "default"  #: ``default`` (the config's), ``single``, ``foreach`` or ``fused````
    autocast: str | None = None  #: ``bf16``: ``torch.autocast(<the case's device>, bf16)``
    log_every: int = 50  #: read the losses back (``.item()``) every N steps, like a logger

    def label(self) -> str:
        default = Options()
        parts = [
            f"{name}={getattr(self, name)}"
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(default, name)
        ]
        return ",".join(parts) or "default"

    def with_(self, **changes: Any) -> Options:
        return replace(self, **changes)


def _optimizer(factory: Any, params: Any, adam: str) -> torch.optim.Optimizer:
    """The config's optimizer factory (a Hydra partial), or one of torch's three
    implementations of the same update: ``single`` (a loop over tensors, torch's CPU default),
    ``foreach`` (one op per step over all tensors), ``fused`` (one kernel)."""
    if adam == "single":
        return factory(params=params, fused=False, foreach=False)
    if adam == "foreach":
        return factory(params=params, fused=False, foreach=True)
    if adam == "fused":
        return factory(params=params, fused=True, foreach=False)
    return factory(params=params)


def autocast_context(kind: str | None, device: str = "cpu") -> contextlib.AbstractContextManager:
    if kind is None:
        return contextlib.nullcontext()
    if kind == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    raise ValueError(f"unknown autocast {kind!r}")


def synchronize(device: str) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously: a clock read without
    this measures the launches, not the work)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class PlainTrainer:
    """Nets + optimizers + one ``step(real)`` per real batch, for a GAN or a VAE case."""

    def __init__(self, data: CaseData, options: Options | None = None) -> None:
        options = options or Options()
        self.data = data
        self.options = options
        self.kind = data.kind
        cfg = data.cfg.model
        nets = build_nets(data.cfg)
        for net in nets.values():  # moved once, before the optimizers are built on them
            if isinstance(net, nn.Module):
                net.to(data.device)
        conv = any(
            p.dim() == 4
            for net in nets.values()
            if isinstance(net, nn.Module)
            for p in net.parameters()
        )
        self.channels_last = conv if options.channels_last is None else options.channels_last
        for net in nets.values():
            if self.channels_last and isinstance(net, nn.Module):
                net.to(memory_format=torch.channels_last)
        self.compile_seconds = 0.0
        if self.kind == "gan":
            self.generator: nn.Module = nets["generator"].train()
            self.discriminator: nn.Module = nets["discriminator"].train()
            self.opt_g = _optimizer(nets["optimizer_g"], self.generator.parameters(), options.adam)
            self.opt_d = _optimizer(
                nets["optimizer_d"], self.discriminator.parameters(), options.adam
            )
            self.prior = nets["prior"]
            self.latent_dim = int(self.generator.latent_dim)
            self.real_range = tuple(float(v) for v in cfg.real_label_range)
            self.fake_range = tuple(float(v) for v in cfg.fake_label_range)
            self.objective = str(cfg.objective)
            if int(cfg.d_steps) != 1 or int(cfg.g_steps) != 1:
                raise ValueError("the plain GAN loop mirrors d_steps = g_steps = 1")
            extras = {
                key: cfg.get(key)
                for key in ("ema_decay", "augment", "grad_clip", "num_classes")
                if cfg.get(key)
            }
            if float(cfg.get("r1_gamma") or 0) > 0:
                extras["r1_gamma"] = cfg.r1_gamma
            if extras:
                raise ValueError(f"the plain GAN loop does not mirror the options {extras}")
            self._g, self._d = self.generator, self.discriminator
            if options.compile:
                self._g, self._d = torch.compile(self.generator), torch.compile(self.discriminator)
        else:
            self.encoder: nn.Module = nets["encoder"].train()
            self.decoder: nn.Module = nets["decoder"].train()
            params = [*self.encoder.parameters(), *self.decoder.parameters()]
            self.opt = _optimizer(nets["optimizer"], params, options.adam)
            self.reconstruction = str(cfg.reconstruction)
            self.beta = float(cfg.beta)
            self.sigma = float(cfg.sigma)
            self._enc, self._dec = self.encoder, self.decoder
            if options.compile:
                self._enc, self._dec = torch.compile(self.encoder), torch.compile(self.decoder)
        self.pixel_range = data.pixel_range
        self.steps = 0
        self.logged: list[float] = []

    # ------------------------------------------------------------------ one real batch
    def step(self, real: torch.Tensor) -> None:
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        with autocast_context(self.options.autocast, self.data.device):
            losses = self._gan_step(real) if self.kind == "gan" else self._vae_step(real)
        self.steps += 1
        if self.options.log_every and self.steps % self.options.log_every == 0:
            self.logged.extend(float(v) for v in losses)  # the one host read-back per N steps

    def _gan_step(self, real: torch.Tensor) -> tuple[torch.Tensor, ...]:
        opts = self.options
        n = real.shape[0]
        z = self.prior.sample((n, self.latent_dim), real.device)
        if opts.g_forward_once:
            fake = self._g(z)  # (N, C, H, W), with a graph into G for the G step
            fake_for_d = fake.detach()
        else:
            with torch.no_grad():
                fake_for_d = self._g(z)
        real_logits = self._d(real)
        fake_logits = self._d(fake_for_d)
        d_loss = discriminator_loss(
            real_logits,
            fake_logits,
            sample_targets(n, self.real_range, real_logits),
            sample_targets(n, self.fake_range, fake_logits),
            self.objective,
        )
        self.opt_d.zero_grad(set_to_none=opts.set_to_none)
        d_loss.backward()
        self.opt_d.step()

        if not opts.g_forward_once:
            fake = self._g(z)
        if opts.freeze_d:
            self.discriminator.requires_grad_(False)
        g_loss = generator_loss(self._d(fake), self.objective)
        self.opt_g.zero_grad(set_to_none=opts.set_to_none)
        g_loss.backward()
        self.opt_g.step()
        if opts.freeze_d:
            self.discriminator.requires_grad_(True)
        return d_loss.detach(), g_loss.detach()

    def _vae_step(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mu, logvar = self._enc(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        decoded = self._dec(z)
        if self.reconstruction == "bce":
            recon = reconstruction_loss(decoded, to_unit(x, self.pixel_range), "bce")
        else:
            mean = from_unit(torch.sigmoid(decoded), self.pixel_range)
            recon = reconstruction_loss(mean, x, self.reconstruction, self.sigma)
        loss = recon.mean() + self.beta * kl_divergence(mu, logvar).mean()
        self.opt.zero_grad(set_to_none=self.options.set_to_none)
        loss.backward()
        self.opt.step()
        return (loss.detach(),)


# ---------------------------------------------------------------------- data feeders
def in_memory_batches(data: CaseData, seed: int = 0) -> Iterator[torch.Tensor]:
    """The DataModule's in-memory path without the DataLoader: a fresh permutation per epoch,
    ``drop_last``, one indexing op per batch, uint8 -> ``pixel_range`` per batch. On a GPU
    the uint8 images are moved there once and each epoch's order with them."""
    images = data.train_images.to(data.device)
    n, b = images.shape[0], data.batch_size
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator).to(data.device)
        for start in range(0, n - b + 1, b):
            yield uint8_to_range(images[order[start : start + b]], data.pixel_range)


def torchvision_batches(data: CaseData, num_workers: int) -> Iterator[torch.Tensor]:
    """torchvision's MNIST dataset (PIL image -> ``ToTensor`` -> ``Normalize`` per sample) in a
    ``DataLoader``: the usual way to feed MNIST, on the same training images (each batch
    copied to the case's device)."""
    if data.train_indices is None:
        raise ValueError("a synthetic case has no torchvision dataset")
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    low, high = data.pixel_range
    # ToTensor gives [0, 1]; Normalize(mean, std) maps it to [low, high]: (x - m) / s.
    scale = [transforms.ToTensor()]
    if (low, high) != (0.0, 1.0):
        scale.append(transforms.Normalize((-low / (high - low),), (1.0 / (high - low),)))
    dataset = datasets.MNIST(
        data.cfg.data.data_dir, train=True, download=False, transform=transforms.Compose(scale)
    )
    loader = DataLoader(
        Subset(dataset, data.train_indices.tolist()),
        batch_size=data.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
    while True:
        for images, _ in loader:
            yield images.to(data.device, non_blocking=True)


# ---------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Steady-state throughput of one measurement, and what it took to get there.

    ``images_per_s`` is the plain mean over the window (every periodic cost included);
    ``median_images_per_s`` uses the median step time instead, which a machine shared with
    other jobs disturbs much less (a preempted step is an outlier, not a shift);
    ``cpu_images_per_s`` divides by this process's CPU time instead of wall time: with one
    intra-op thread it is the wall time an idle machine would show, and other jobs barely
    move it (it misses other processes' work, e.g. DataLoader workers or a logger service).
    """

    images_per_s: float
    steps: int
    seconds: float
    startup_s: float  #: construction (and compile) to the end of the first step
    median_images_per_s: float = 0.0
    cpu_images_per_s: float = 0.0
    #: with ``torch.compile``: construction to the end of the warm-up (all compilations)
    compile_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "images_per_s": self.images_per_s,
            "median_images_per_s": self.median_images_per_s,
            "cpu_images_per_s": self.cpu_images_per_s,
            "steps": self.steps,
            "seconds": self.seconds,
            "startup_s": self.startup_s,
            "compile_s": self.compile_s,
        }

    @classmethod
    def from_steps(
        cls,
        step_seconds: list[float],
        cpu_seconds: float,
        batch_size: int,
        startup_s: float,
        compile_s: float = 0.0,
    ) -> Timing:
        total = sum(step_seconds)
        median = sorted(step_seconds)[len(step_seconds) // 2]
        return cls(
            images_per_s=len(step_seconds) * batch_size / total,
            steps=len(step_seconds),
            seconds=total,
            startup_s=startup_s,
            median_images_per_s=batch_size / median,
            cpu_images_per_s=len(step_seconds) * batch_size / max(cpu_seconds, 1e-9),
            compile_s=compile_s,
        )


def time_plain(
    data: CaseData,
    options: Options = Options(),
    feeder: str = "memory",
    warmup_steps: int = 20,
    seconds: float = 3.0,
    min_steps: int = 5,
) -> Timing:
    """Build a fresh :class:`PlainTrainer`, warm up, then time whole steps for ``seconds``.

    ``feeder``: ``memory`` (the DataModule's tensors), ``torchvision0`` / ``torchvision2``
    (torchvision's dataset in a DataLoader with 0 / 2 workers). The clock covers fetching
    each batch and the step, as the project's clock does.
    """
    start = time.perf_counter()
    torch.manual_seed(0)
    trainer = PlainTrainer(data, options)
    if feeder == "memory":
        batches = in_memory_batches(data)
    elif feeder.startswith("torchvision"):
        batches = torchvision_batches(data, int(feeder.removeprefix("torchvision")))
    else:
        raise ValueError(f"unknown feeder {feeder!r}")
    trainer.step(next(batches))
    startup = time.perf_counter() - start
    for _ in range(max(0, warmup_steps - 1)):
        trainer.step(next(batches))
    # Compiling (and recompiling for the frozen-D graph) happens during the warm-up steps.
    compile_s = time.perf_counter() - start if options.compile else 0.0
    step_seconds: list[float] = []
    elapsed = 0.0
    synchronize(data.device)  # the timed window starts and ends with an idle device
    cpu0 = time.process_time()
    last = time.perf_counter()
    while len(step_seconds) < min_steps or elapsed < seconds:
        trainer.step(next(batches))
        now = time.perf_counter()
        step_seconds.append(now - last)
        elapsed += now - last
        last = now
    synchronize(data.device)
    if data.device != "cpu":  # the queued work belongs to the window (to its last step)
        now = time.perf_counter()
        step_seconds[-1] += now - last
    cpu = time.process_time() - cpu0
    batches.close()  # shuts DataLoader workers down before the next measurement
    return Timing.from_steps(step_seconds, cpu, data.batch_size, startup, compile_s)
