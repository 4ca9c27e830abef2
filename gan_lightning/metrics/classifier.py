"""The project's own MNIST digit classifier: the ``digits`` feature extractor behind FID/KID/IS.

InceptionV3 features describe ImageNet photos; on 28x28 grayscale digits they mostly measure
up-sampling artefacts (seed 003 had to turn MNIST into 299x299 RGB by hand and got FIDs far
below 1). A small LeNet-style CNN trained on MNIST gives a feature space where distances mean
"looks like a different digit": its penultimate activations (``num_features``) feed FID/KID,
its softmax gives an MNIST Inception Score (at most 10) and a class histogram that shows mode
collapse directly.

The trained weights are cached as a plain state dict (loaded with ``weights_only=True``) at
``<data_dir>/classifiers/<CLASSIFIER_FILE>``. The first use trains it (25 s on an idle CPU
core, about a minute on a busy one) and logs that it does;
``python -m gan_lightning.metrics.train_classifier`` does it ahead of time.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.threads import one_cpu_thread
from gan_lightning.runtime.filesystem import atomic_save
from gan_lightning.utils.modes import eval_mode
from gan_lightning.utils.pixels import to_unit
from gan_lightning.utils.streams import seeded_streams

log = logging.getLogger(__name__)

#: Bump the version when the architecture or the training recipe changes: old caches are then
#: ignored (a new file name) instead of loaded into a different network.
CLASSIFIER_FILE = "mnist_digits_lenet_v2.pt"
#: MNIST's pixel mean/std on [0, 1]; the classifier standardises its [0, 1] input with them.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class DigitClassifier(nn.Module):
    """LeNet-style CNN for (N, 1, 28, 28) images in [0, 1].

    conv5x5(1->c1) -> BN -> ReLU -> maxpool2 -> conv5x5(c1->c2) -> BN -> ReLU -> maxpool2 ->
    linear(16*c2 -> num_features) -> ReLU [features] -> dropout -> linear(num_features -> 10).
    """

    num_classes = 10

    def __init__(self, channels: Sequence[int] = (16, 32), num_features: int = 128) -> None:
        super().__init__()
        c1, c2 = (int(c) for c in channels)
        self.channels = (c1, c2)
        self.num_features = int(num_features)
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 5),  # (N, c1, 24, 24)
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c1, 12, 12)
            nn.Conv2d(c1, c2, 5),  # (N, c2, 8, 8)
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c2, 4, 4)
            nn.Flatten(),  # (N, 16 * c2)
            nn.Linear(16 * c2, self.num_features),
            nn.ReLU(),  # (N, num_features): the FID/KID features
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.num_features, self.num_classes)  # (N, 10) logits

    @staticmethod
    def standardize(images01: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> the network's input (MNIST's pixel mean and std)."""
        return (images01 - MNIST_MEAN) / MNIST_STD

    def features_and_logits(self, images01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features (N, num_features) and logits (N, 10) of [0, 1] images."""
        features = self.body(self.standardize(images01))
        return features, self.head(self.dropout(features))

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images01)[1]

    def inference_body(self) -> nn.Sequential:
        """:attr:`body` for scoring: the same features, 3-4x faster on a CPU
        (``python -m benchmarks.classifier``).

        A copy with each BatchNorm folded into its convolution (``fuse_conv_bn_eval``:
        eval-mode statistics, as the extractor always runs), each max-pool moved before its
        ReLU (a monotone function commutes with max: the same values on a quarter of the
        elements) and channels-last weights (oneDNN's fast layout for these small convs).
        Features agree with :meth:`features_and_logits` to float rounding (~1e-6); the
        weights stay the trained ones, never changed in place."""
        conv1, bn1, relu1, pool1, conv2, bn2, relu2, pool2, *rest = copy.deepcopy(self.body)
        body = nn.Sequential(
            fuse_conv_bn_eval(conv1.eval(), bn1.eval()),  # (N, c1, 24, 24)
            pool1,  # (N, c1, 12, 12)
            relu1,
            fuse_conv_bn_eval(conv2.eval(), bn2.eval()),  # (N, c2, 8, 8)
            pool2,  # (N, c2, 4, 4)
            relu2,
            *rest,  # flatten, linear, ReLU: (N, num_features)
        )
        return body.to(memory_format=torch.channels_last).eval().requires_grad_(False)

    def architecture(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "num_features": self.num_features}


# --------------------------------------------------------------------------- data
def load_mnist_tensors(
    data_dir: str | os.PathLike, sources: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """MNIST as uint8 tensors (N, 1, 28, 28) + labels: the whole 60k train set and the 10k test
    set, in file order.

    Through :class:`~gan_lightning.data.mnist.MNISTDataModule` (``val_size=0``: nothing held
    out), so the classifier sees MNIST exactly as training runs do, fetched by the same chain.
    """
    from gan_lightning.data.mnist import MNISTDataModule
    from gan_lightning.data.sources.mnist import MNIST_SOURCES

    datamodule = MNISTDataModule(
        data_dir=str(data_dir), sources=tuple(sources) if sources else MNIST_SOURCES, val_size=0
    )
    datamodule.prepare_data()
    datamodule.setup()
    train, test = datamodule.train_set, datamodule.test_set
    return {
        "train_images": train.images,
        "train_labels": train.labels,
        "test_images": test.images,
        "test_labels": test.labels,
    }


def _as_input(images_uint8: torch.Tensor) -> torch.Tensor:
    return to_unit(images_uint8.float(), (0.0, 255.0))


@torch.no_grad()
def accuracy(
    model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> float:
    """Top-1 accuracy on uint8 images (N, 1, 28, 28)."""
    correct = 0
    with eval_mode(model):
        for start in range(0, images.shape[0], batch_size):
            logits = model(_as_input(images[start : start + batch_size]))
            correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return correct / max(1, images.shape[0])


# --------------------------------------------------------------------------- training
def train_digit_classifier(
    data: dict[str, torch.Tensor],
    epochs: int = 2,
    batch_size: int = 64,
    max_lr: float = 6e-3,
    train_size: int | None = None,
    seed: int = 0,
    channels: Sequence[int] = (16, 32),
    num_features: int = 128,
) -> tuple[DigitClassifier, float]:
    """Train on MNIST train (or its first ``train_size`` images); returns (model, test accuracy).

    In-memory uint8 tensors, one fancy-index per batch, Adam with a one-cycle schedule: two
    epochs reach 99.3% test accuracy in 25 s of one idle CPU core. One thread on
    purpose (:mod:`gan_lightning.metrics.threads`): on a shared machine two made it 3x slower.
    """
    if epochs < 1 or batch_size < 1:
        raise ConfigError(
            f"classifier training needs epochs >= 1 and batch_size >= 1; got {epochs}, {batch_size}."
        )
    images, labels = data["train_images"], data["train_labels"]
    if train_size is not None:
        images, labels = images[: int(train_size)], labels[: int(train_size)]
    generator = torch.Generator().manual_seed(int(seed))
    with one_cpu_thread(), seeded_streams(seed):  # weight init and dropout
        model = DigitClassifier(channels, num_features)
        steps_per_epoch = images.shape[0] // batch_size
        if steps_per_epoch < 1:
            raise ConfigError(f"{images.shape[0]} training images < batch_size={batch_size}.")
        optimizer = torch.optim.Adam(model.parameters(), lr=max_lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=epochs * steps_per_epoch
        )
        model.train()
        for epoch in range(epochs):
            order = torch.randperm(images.shape[0], generator=generator)
            start_time = time.perf_counter()
            for step in range(steps_per_epoch):
                index = order[step * batch_size : (step + 1) * batch_size]
                loss = F.cross_entropy(model(_as_input(images[index])), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
            log.info(
                "digit classifier: epoch %d/%d, last loss %.4f (%.0f s)",
                epoch + 1,
                epochs,
                float(loss.detach()),
                time.perf_counter() - start_time,
            )
    model.eval()
    return model, accuracy(model, data["test_images"], data["test_labels"])


# --------------------------------------------------------------------------- cache
def default_classifier_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / "classifiers" / CLASSIFIER_FILE


def save_classifier(model: DigitClassifier, path: str | os.PathLike, **info: Any) -> Path:
    """Write ``{"state_dict", "architecture", **info}`` atomically (tmp file + rename)."""
    payload = {
        "state_dict": model.state_dict(),
        "architecture": model.architecture(),
        **info,
    }
    umask = os.umask(0)
    os.umask(umask)
    # A shared data dir: readable like any other file.
    return atomic_save(
        payload,
        path,
        "the digit classifier",
        "pass output=<a writable file> (or a writable paths.data_dir)",
        mode=0o666 & ~umask,
    )


def load_classifier(path: str | os.PathLike) -> tuple[DigitClassifier, dict[str, Any]]:
    """Load a cached classifier (``weights_only=True``); returns (model in eval mode, info)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = DigitClassifier(**payload["architecture"])
        model.load_state_dict(payload["state_dict"])
    except (
        OSError,
        RuntimeError,
        KeyError,
        TypeError,
        ValueError,
        EOFError,
        pickle.UnpicklingError,
    ) as err:
        raise ConfigError(
            f"metrics: {path} is not a digit classifier of this project ({str(err).splitlines()[0]}). "
            "Delete it (it is retrained on first use) or run "
            "`python -m gan_lightning.metrics.train_classifier --force`."
        ) from err
    model.eval()
    info = {k: v for k, v in payload.items() if k not in ("state_dict", "architecture")}
    return model, info


def ensure_classifier(
    path: str | os.PathLike,
    data_dir: str | os.PathLike,
    sources: Sequence[str] | None = None,
    force: bool = False,
    **train_kwargs: Any,
) -> Path:
    """The cached classifier at ``path``, trained on ``data_dir``'s MNIST first if missing."""
    path = Path(path)
    if path.is_file() and not force:
        return path
    log.info(
        "No digit classifier at %s: training one on MNIST from %s (once; under a minute on a "
        "CPU). Ahead of time: python -m gan_lightning.metrics.train_classifier",
        path,
        data_dir,
    )
    start = time.perf_counter()
    model, test_accuracy = train_digit_classifier(
        load_mnist_tensors(data_dir, sources), **train_kwargs
    )
    seconds = time.perf_counter() - start
    save_classifier(
        model,
        path,
        test_accuracy=test_accuracy,
        train_seconds=seconds,
        recipe={k: v for k, v in train_kwargs.items() if isinstance(v, (int, float))},
    )
    log.info(
        "Digit classifier: test accuracy %.4f after %.0f s -> %s", test_accuracy, seconds, path
    )
    if test_accuracy < 0.99:
        log.warning("Digit classifier test accuracy %.4f is below 0.99.", test_accuracy)
    return path
