"""Shared pieces of the metrics tests: tiny stand-ins for a generator module and a DataModule,
an untrained classifier file, and the overrides of a cheap metrics run."""

from __future__ import annotations

from pathlib import Path

import torch

from gan_lightning.data.loaders import passthrough_collate
from gan_lightning.data.tensors import TensorImageDataset
from gan_lightning.metrics.classifier import (
    DigitClassifier,
    save_classifier,
)

#: Images the quick classifier trains on (one epoch): a CPU-cheap stand-in for the real one.
QUICK_TRAIN_SIZE = 6000
#: What one epoch on QUICK_TRAIN_SIZE images reaches on the 10k MNIST test set. The full
#: recipe (2 epochs on 60k) reaches >= 0.99: tests/metrics/test_classifier.py, slow test.
QUICK_MIN_ACCURACY = 0.95


def random_classifier_file(path: Path, seed: int = 0) -> Path:
    """An untrained (seeded) classifier: a fixed, deterministic feature map for exact tests."""
    torch.manual_seed(seed)
    model = DigitClassifier()
    model.eval()
    return save_classifier(model, path)


class TinyGenerator(torch.nn.Module):
    """Just the module contract the metrics use: latent_dim, pixel_range, sample_latent,
    generate, device. z (N, 8) -> tanh images (N, 1, 28, 28)."""

    latent_dim = 8
    pixel_range = (-1.0, 1.0)

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Linear(self.latent_dim, 28 * 28)

    @property
    def device(self) -> torch.device:
        return self.net.weight.device

    def sample_latent(self, n, generator=None, device=None):
        return torch.randn(n, self.latent_dim, generator=generator).to(device or self.device)

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(z.to(self.device))).view(-1, 1, 28, 28)


class TinyConditionalGenerator(TinyGenerator):
    """TinyGenerator asked for one of ``num_classes`` classes: the label brightens the image."""

    def __init__(self, seed: int = 0, num_classes: int = 3) -> None:
        super().__init__(seed)
        self.num_classes = num_classes

    def sample_labels(self, n, generator=None, device=None):
        return torch.randint(0, self.num_classes, (n,), generator=generator).to(
            device or self.device
        )

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        shift = labels.to(self.device).float().view(-1, 1, 1, 1) / self.num_classes
        return (super().generate(z) + shift).clamp(-1, 1)


class TinyDataModule:
    """uint8 'real' images in the layout of the project's DataModules (val/test/train sets);
    with ``num_classes``, labelled ``0, 1, ..., num_classes-1, 0, ...`` like a labelled
    DataModule (MNIST's ``num_classes = 10``)."""

    pixel_range = (-1.0, 1.0)
    in_memory = True

    def __init__(self, n: int = 400, seed: int = 1, num_classes: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        images = (torch.rand(n, 1, 28, 28, generator=g) * 255).to(torch.uint8)
        self.num_classes = num_classes
        labels = torch.arange(n) % num_classes if num_classes else torch.zeros(n, dtype=torch.long)
        self.train_set = self.val_set = self.test_set = TensorImageDataset(images, labels)

    def loader(self, dataset, train: bool):
        return torch.utils.data.DataLoader(
            dataset, batch_size=128, shuffle=False, collate_fn=passthrough_collate
        )


def smoke_with_metrics() -> list[str]:
    """tests/conftest.py's SMOKE overrides, with the metrics component left on."""
    from tests.conftest import SMOKE

    return [o for o in SMOKE if not o.startswith("metrics=")]


def metrics_overrides(classifier: Path, num_samples: int = 200) -> list[str]:
    """A cheap but complete metrics setup for smoke runs."""
    return [
        "metrics.extractor=digits",
        f"metrics.classifier_path={classifier}",
        f"metrics.num_samples={num_samples}",
        "metrics.kid_subset_size=50",
        "metrics.kid_subsets=10",
        "metrics.batch_size=100",
    ]
