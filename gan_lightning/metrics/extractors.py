"""Feature extractors for FID/KID/IS, and THE conversion of images into what each one expects.

Two extractors, named in every logged metric (``val/fid_digits`` vs ``val/fid_inception``) so
numbers from different feature spaces are never compared by mistake:

* ``digits``: the project's MNIST classifier (:mod:`gan_lightning.metrics.classifier`); input
  (N, 1, 28, 28) float in [0, 1]; 128-d penultimate features, 10 logits.
* ``inception``: torchmetrics' default FID network, InceptionV3 with torch-fidelity's weights;
  input (N, 3, H, W) uint8 (it resizes to 299 itself); 2048-d pool features, 1008 logits.
  Online users get the weights downloaded once (torch hub cache); offline users pass
  ``metrics.inception_weights=/path/to/weights-inception-2015-12-05-6726825d.pth``.

:func:`prepare_images` converts generated or real images, in any pixel range (or uint8) and
with 1 or 3 channels, into an extractor's :class:`InputSpec`; nobody else converts.
Extractors are frozen (no gradients, always in eval mode) and live outside the
LightningModule, so DDP never sees their parameters.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.classifier import (
    DigitClassifier,
    default_classifier_path,
    ensure_classifier,
    load_classifier,
)
from gan_lightning.runtime.compat import inception_features
from gan_lightning.utils.pixels import to_uint8, to_unit

log = logging.getLogger(__name__)

EXTRACTORS = ("digits", "inception")
#: torch-fidelity's InceptionV3 weights (what torchmetrics' FID downloads).
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[1]
#: ITU-R BT.601 luma: RGB -> gray for an extractor that reads one channel.
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class InputSpec:
    """What an extractor's forward takes: channels, square size (None: any), dtype.

    ``dtype=torch.uint8`` means 0..255; ``torch.float32`` means [0, 1].
    """

    channels: int
    size: int | None
    dtype: torch.dtype


def prepare_images(
    images: torch.Tensor, pixel_range: Sequence[float], spec: InputSpec
) -> torch.Tensor:
    """Images (N, C, H, W) -> the extractor's input.

    ``images`` are uint8 (0..255, e.g. real data straight from a dataset) or floats in
    ``pixel_range`` (generated images, or real data after the DataModule's scaling). Grayscale
    is repeated to 3 channels, RGB reduced to luma for 1-channel extractors, and the size
    changed with antialiased bilinear resampling when the extractor has a fixed input size.
    """
    if images.dim() != 4:
        raise ConfigError(
            f"metrics: expected image batches (N, C, H, W); got shape {tuple(images.shape)}."
        )
    unit = images.float() / 255.0 if images.dtype == torch.uint8 else to_unit(images, pixel_range)
    channels = unit.shape[1]
    if channels != spec.channels:
        if channels == 1 and spec.channels == 3:
            unit = unit.expand(-1, 3, -1, -1)
        elif channels == 3 and spec.channels == 1:
            weights = torch.tensor(LUMA, device=unit.device, dtype=unit.dtype).view(1, 3, 1, 1)
            unit = (unit * weights).sum(dim=1, keepdim=True)
        else:
            raise ConfigError(
                f"metrics: images with {channels} channels cannot be fed to an extractor that "
                f"takes {spec.channels}; use 1- or 3-channel images."
            )
    if spec.size is not None and tuple(unit.shape[-2:]) != (spec.size, spec.size):
        unit = F.interpolate(
            unit, size=(spec.size, spec.size), mode="bilinear", align_corners=False, antialias=True
        ).clamp_(0.0, 1.0)
    if spec.dtype == torch.uint8:
        return to_uint8(unit, (0.0, 1.0))
    return unit.contiguous().to(spec.dtype)


class FeatureExtractor(nn.Module):
    """A frozen network: prepared images -> (features (N, num_features), logits (N, K) or None).

    ``reports_classes``: its classes are the data's own (digits), so a class histogram of the
    generated images means something; ImageNet classes on faces would not.
    """

    name: str = "base"
    spec: InputSpec
    num_features: int
    num_classes: int | None = None
    reports_classes: bool = False
    #: The file its weights came from (the scores' protocol names it), if any.
    weights_path: str | None = None

    def freeze(self) -> FeatureExtractor:
        self.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> FeatureExtractor:  # noqa: ARG002 - always eval
        return super().train(False)

    def extract(
        self, images: torch.Tensor, pixel_range: Sequence[float]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features and logits of raw images (any range/channels), converted on the way in."""
        device = next(self.parameters()).device
        return self(prepare_images(images.to(device), pixel_range, self.spec))


class DigitsExtractor(FeatureExtractor):
    name = "digits"
    spec = InputSpec(channels=1, size=28, dtype=torch.float32)
    reports_classes = True

    def __init__(self, classifier: DigitClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features
        self.num_classes = classifier.num_classes
        self.freeze()
        #: The classifier's body in its fast inference form (BatchNorm folded, channels-last).
        self.body = classifier.inference_body()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        standardized = self.classifier.standardize(images)  # (N, 1, 28, 28)
        features = self.body(standardized.contiguous(memory_format=torch.channels_last))
        return features, self.classifier.head(features)  # dropout: identity in eval mode


class InceptionExtractor(FeatureExtractor):
    """torchmetrics' ``NoTrainInceptionV3`` (the network inside its FID/KID/IS), asked for the
    2048-d pool features and the 1008 unbiased logits in one forward pass."""

    name = "inception"
    spec = InputSpec(channels=3, size=None, dtype=torch.uint8)
    num_features = 2048
    num_classes = 1008

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=[str(self.num_features), "logits_unbiased"],
            feature_extractor_weights_path=weights_path,
        )
        hub = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
        self.weights_path = str(weights_path) if weights_path else str(hub)
        self.freeze()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, logits = inception_features(self.net, images)
        return features.reshape(images.shape[0], -1), logits.reshape(images.shape[0], -1)


# --------------------------------------------------------------------------- choosing one
def resolve_extractor_name(name: str, image_shape: Sequence[int] | None) -> str | None:
    """``auto`` -> ``digits`` for (1, 28, 28) images (MNIST), ``inception`` for other images;
    ``None`` when the data are not images (e.g. the 1-D Gaussian toy): nothing to score."""
    if name not in (*EXTRACTORS, "auto"):
        raise ConfigError(
            f"metrics.extractor={name!r} is not known; choose one of {['auto', *EXTRACTORS]}."
        )
    if image_shape is not None and len(image_shape) != 3:
        return None
    if name != "auto":
        return name
    if image_shape is None:
        raise ConfigError(
            "metrics.extractor=auto needs the data's image_shape (data.image_shape); set "
            "metrics.extractor=digits or metrics.extractor=inception."
        )
    return "digits" if tuple(int(s) for s in image_shape) == (1, 28, 28) else "inception"


def inception_weights_error(reason: str) -> ConfigError:
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return ConfigError(
        f"metrics.extractor=inception needs torch-fidelity's InceptionV3 weights ({INCEPTION_FILE}), "
        f"and {reason}. Either (1) run once with internet access: they are downloaded to {hub} "
        f"and reused offline after that, or (2) download {INCEPTION_URL} on another machine and "
        f"pass metrics.inception_weights=/path/to/{INCEPTION_FILE}. (For 28x28 digits, "
        "metrics.extractor=digits needs no download; metrics=none trains without scores.)"
    )


def check_inception_weights(weights_path: str | os.PathLike) -> None:
    """The file exists and is a state dict of InceptionV3 tensors, loadable with
    ``weights_only=True`` (torch-fidelity itself unpickles it without that guard)."""
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise inception_weights_error(f"metrics.inception_weights={path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same advice
        raise inception_weights_error(
            f"metrics.inception_weights={path} is not a plain state dict ({str(err).splitlines()[0][:160]})"
        ) from err
    if (
        not isinstance(state, dict)
        or "fc.weight" not in state
        or "Mixed_7c.branch_pool.conv.weight" not in state
    ):
        raise inception_weights_error(
            f"metrics.inception_weights={path} does not hold InceptionV3 weights (no fc/Mixed_7c tensors)"
        )


def build_inception(weights_path: str | os.PathLike | None) -> InceptionExtractor:
    if weights_path is not None:
        check_inception_weights(weights_path)
        try:
            return InceptionExtractor(str(Path(weights_path).expanduser()))
        except RuntimeError as err:  # load_state_dict: wrong shapes / keys
            raise inception_weights_error(
                f"metrics.inception_weights={weights_path} does not fit InceptionV3 "
                f"({str(err).splitlines()[0][:160]})"
            ) from err
    try:
        return InceptionExtractor(None)  # torch hub cache, or a download
    except (OSError, RuntimeError, ValueError) as err:  # URLError is an OSError
        raise inception_weights_error(
            f"they are not cached and could not be downloaded ({str(err).splitlines()[0][:160]})"
        ) from err


def build_digits(
    classifier_path: str | os.PathLike | None,
    data_dir: str | os.PathLike,
    train_if_missing: bool = True,
) -> DigitsExtractor:
    """The cached classifier (trained on ``data_dir``'s MNIST first if missing and allowed)."""
    path = Path(classifier_path) if classifier_path else default_classifier_path(data_dir)
    if not path.is_file():
        if not train_if_missing:
            raise ConfigError(
                f"metrics: no digit classifier at {path}; train it with "
                "`python -m gan_lightning.metrics.train_classifier`."
            )
        ensure_classifier(path, data_dir)
    classifier, info = load_classifier(path)
    log.info(
        "digits extractor: %s (test accuracy %s)",
        path,
        f"{info['test_accuracy']:.4f}" if "test_accuracy" in info else "unknown",
    )
    extractor = DigitsExtractor(classifier)
    extractor.weights_path = str(path)
    return extractor


def build_extractor(name: str, **options: Any) -> FeatureExtractor:
    """``name`` in :data:`EXTRACTORS`; options: classifier_path, data_dir, inception_weights."""
    if name == "digits":
        return build_digits(
            options.get("classifier_path"),
            options.get("data_dir", "data"),
            options.get("train_if_missing", True),
        )
    if name == "inception":
        return build_inception(options.get("inception_weights"))
    raise ConfigError(f"metrics.extractor={name!r} is not known; choose one of {list(EXTRACTORS)}.")
