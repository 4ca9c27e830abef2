"""What your own nets, DataModules and modules must provide: the contract, in one place.

The framework calls only what is written here, so a generator, discriminator or DataModule
from your own package plugs in through a config (``_target_: my_project.nets.MyGenerator``)
without editing ``gan_lightning``. docs/contract.md says the same for people; the
:class:`typing.Protocol` classes below say it for type checkers, and the ``check_*`` functions
say it to a user whose class does not fit, in one line, before any training step:

* :class:`Generator`: ``latent_dim`` and ``forward(z[, labels]) -> images (N, *image_shape)``;
* :class:`Discriminator`: ``forward(x[, labels]) -> logits (N,)`` (or ``(N, 1)``) is enough;
* :class:`FeatureDiscriminator`: ``extract``/``head``/``classify``, needed only by an AC-GAN
  discriminator (``model.conditioning=acgan``), whose class logits share D's features;
* :class:`ImageDataModule`: ``image_shape``, ``pixel_range`` and optionally ``num_classes``;
* :class:`SamplingModule`: what callbacks, metrics and the CLIs call on a LightningModule.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.utils.modes import eval_mode


@runtime_checkable
class Generator(Protocol):
    """z (N, latent_dim) [and labels (N,) when ``num_classes`` > 0] -> images (N, *image_shape)
    in the data's ``pixel_range``. ``num_classes`` (default 0) and ``output_activation_name``
    (default ``linear``: never refused by the pixel-range check) are optional attributes."""

    latent_dim: int

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class Discriminator(Protocol):
    """images (N, *image_shape) [and labels (N,) when ``num_classes`` > 0] -> logits (N,)
    or (N, 1), before any sigmoid. ``num_classes`` (default 0) and ``conditioning`` (default
    ``none``; ``projection`` or ``acgan``) are optional attributes."""

    def __call__(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class FeatureDiscriminator(Discriminator, Protocol):
    """The feature/head split, for what needs D's features: an AC-GAN head classifies the
    same features the real/fake logit is computed from (``forward = head(extract(x), y)``)."""

    def extract(self, x: torch.Tensor) -> torch.Tensor: ...

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...

    def classify(self, h: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class ImageDataModule(Protocol):
    """A LightningDataModule whose batches are ``(images, labels)`` or bare images in
    ``pixel_range`` (uint8 batches are converted by :class:`~gan_lightning.data.base.BaseDataModule`).
    Metrics read real images from its ``train_set``/``val_set``/``test_set`` datasets;
    conditional GANs need ``num_classes`` > 0 and labels in the batches."""

    image_shape: Sequence[int]
    pixel_range: Sequence[float]


@runtime_checkable
class SamplingModule(Protocol):
    """What sample grids, metrics, gan-generate and gan-evaluate call on a LightningModule.
    :class:`~gan_lightning.modules.base.GenerativeModule` provides all of it; a subclass only
    defines ``decode``, ``sampling_nets``, ``training_step`` and ``configure_optimizers``."""

    latent_dim: int
    pixel_range: tuple[float, float]
    num_classes: int
    prior: Any
    batches_seen: int

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, device: Any = None
    ) -> torch.Tensor: ...

    def sample_labels(
        self, n: int, generator: torch.Generator | None = None, device: Any = None
    ) -> torch.Tensor | None: ...

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def optimizer_steps_for(self, n_batches: int) -> int: ...


#: Where each contract is written down for people.
DOC = "docs/contract.md"
FEATURE_METHODS = ("extract", "head", "classify")


def conditions_of(module: Any) -> int:
    """Labels a model's sampler takes (0: none): ``num_conditions`` of a GenerativeModule (a
    self-conditioned GAN's clusters), else ``num_classes``, for modules of any origin."""
    return int(getattr(module, "num_conditions", getattr(module, "num_classes", 0)) or 0)


def _name(net: Any) -> str:
    return type(net).__name__


def takes_labels(net: nn.Module) -> bool:
    """Whether ``net.forward`` accepts a second positional argument (the labels)."""
    try:
        parameters = inspect.signature(net.forward).parameters.values()
    except (TypeError, ValueError):  # a builtin or C-implemented forward: cannot tell
        return True
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) >= 2 or any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters
    )


def check_generator(generator: Any, num_classes: int = 0) -> int:
    """G's ``latent_dim`` (a positive int), and a ``forward`` that takes labels when the
    model is conditional; returns ``latent_dim``."""
    if not isinstance(generator, nn.Module):
        raise ConfigError(
            f"model.generator is a {_name(generator)}, not a torch.nn.Module; a generator is an "
            f"nn.Module with latent_dim and forward(z[, labels]) ({DOC})."
        )
    latent_dim = getattr(generator, "latent_dim", None)
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ConfigError(
            f"model.generator ({_name(generator)}) has latent_dim={latent_dim!r}; a generator "
            f"must set self.latent_dim to the size of z, a positive int ({DOC})."
        )
    if num_classes and not takes_labels(generator):
        raise ConfigError(
            f"model.num_classes={num_classes} but {_name(generator)}.forward takes no labels; "
            f"a conditional generator is forward(z, labels) ({DOC})."
        )
    return latent_dim


def check_discriminator(discriminator: Any, num_classes: int, conditioning: str) -> None:
    """D is an nn.Module whose forward takes labels when the model is conditional, and an
    AC-GAN D also has the feature/head split."""
    if not isinstance(discriminator, nn.Module):
        raise ConfigError(
            f"model.discriminator is a {_name(discriminator)}, not a torch.nn.Module; a "
            f"discriminator is an nn.Module with forward(x[, labels]) -> logits (N,) ({DOC})."
        )
    if conditioning == "acgan":
        missing = [m for m in FEATURE_METHODS if not callable(getattr(discriminator, m, None))]
        if missing:
            raise ConfigError(
                f"model.conditioning=acgan but {_name(discriminator)} has no "
                f"{'/'.join(missing)}; an AC-GAN discriminator splits forward into extract(x) "
                f"-> h, head(h, labels) -> logits and classify(h) -> class logits ({DOC})."
            )
    elif num_classes and not takes_labels(discriminator):
        raise ConfigError(
            f"model.num_classes={num_classes} but {_name(discriminator)}.forward takes no "
            f"labels; a conditional discriminator is forward(x, labels) ({DOC})."
        )


def as_logits(logits: Any, n: int, name: str = "the discriminator") -> torch.Tensor:
    """D's output as logits (N,): (N,) as is, (N, 1) squeezed; anything else is refused."""
    if isinstance(logits, torch.Tensor):
        if logits.dim() == 2 and logits.shape[1] == 1:
            logits = logits.squeeze(1)
        if logits.dim() == 1 and logits.shape[0] == n:
            return logits
    shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
    raise ConfigError(
        f"{name} returned {shape} for {n} images; it must return one logit per image, a tensor "
        f"of shape ({n},) or ({n}, 1), before any sigmoid ({DOC})."
    )


def probe_nets(
    generator: nn.Module,
    discriminator: nn.Module,
    image_shape: Sequence[int] | None,
    num_classes: int = 0,
) -> None:
    """One forward pass of two samples through G then D (eval mode, no gradients, a private
    random stream: nothing about training changes), checking the shapes the contract asks
    for. Runs before the first step, so a net that does not fit fails in a line, not in a
    loss function's broadcasting error after the data loaders started. A packing D (an int
    attribute ``pack`` = m > 1, PacGAN) gets the smallest multiple of m >= 2 samples."""
    pack = getattr(discriminator, "pack", 1)
    pack = pack if isinstance(pack, int) and not isinstance(pack, bool) and pack > 1 else 1
    n = pack * -(-2 // pack)  # 2, or m for m >= 2
    z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(n) % num_classes if num_classes else None
    device = next((p.device for p in generator.parameters()), torch.device("cpu"))
    z = z.to(device)
    labels = labels.to(device) if labels is not None else None
    expected = tuple(int(s) for s in image_shape) if image_shape is not None else None
    with torch.no_grad(), eval_mode(generator, discriminator):
        images = _run("model.generator", generator, z, labels)
        if not isinstance(images, torch.Tensor) or (
            expected is not None and tuple(images.shape) != (n, *expected)
        ):
            got = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ConfigError(
                f"model.generator ({_name(generator)}) returned {got} for {n} latents, but the "
                f"data are images of shape {list(expected or [])}; it must return (N, "
                f"*data.image_shape) ({DOC})."
            )
        d_device = next((p.device for p in discriminator.parameters()), device)
        logits = _run("model.discriminator", discriminator, images.to(d_device), labels)
        as_logits(logits, n, f"model.discriminator ({_name(discriminator)})")


def _run(key: str, net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor | None) -> Any:
    """``net(inputs[, labels])``; an exception inside it becomes one line naming the net and
    what it was given (a layer built for another image size, another latent size ...)."""
    try:
        return net(inputs, labels) if labels is not None else net(inputs)
    except Exception as err:  # noqa: BLE001 - any failure of user code on a valid input
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"{key} ({_name(net)}) fails on a batch of shape {list(inputs.shape)}"
            f"{' with labels' if labels is not None else ''}: {first} ({DOC})."
        ) from err


def check_datamodule(datamodule: Any) -> tuple[int, ...] | None:
    """The DataModule's ``image_shape`` and ``pixel_range`` exist; returns the shape."""
    missing = [a for a in ("image_shape", "pixel_range") if not hasattr(datamodule, a)]
    if missing:
        raise ConfigError(
            f"data: {_name(datamodule)} has no {' or '.join(missing)}; a DataModule tells the "
            f"nets and metrics its image_shape (C, H, W) and pixel_range [low, high] ({DOC})."
        )
    shape = datamodule.image_shape
    return tuple(int(s) for s in shape) if shape is not None else None


#: The attributes of :class:`SamplingModule`, checked by :func:`check_module`.
MODULE_ATTRIBUTES = (
    *("latent_dim", "pixel_range", "num_classes", "prior", "batches_seen"),
    *("sample_latent", "sample_labels", "generate", "sample", "optimizer_steps_for"),
)


def check_module(module: Any) -> None:
    """The LightningModule offers what callbacks, metrics and the CLIs call."""
    missing = [name for name in MODULE_ATTRIBUTES if not hasattr(module, name)]
    if missing:
        raise ConfigError(
            f"model: {_name(module)} has no {', '.join(missing)}; subclass "
            f"gan_lightning.modules.base.GenerativeModule, which provides them ({DOC})."
        )
