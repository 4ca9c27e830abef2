"""Intra-class FID against values computed by hand on 1-D features, and the per-class FID
being the very estimator of the run's FID."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.metrics.classifier import load_classifier
from gan_lightning.metrics.extractors import DigitsExtractor
from gan_lightning.metrics.intra_fid import frechet_distance, intra_class_fid
from gan_lightning.metrics.scores import Scorer
from tests.metrics.helpers import random_classifier_file


def _column(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)[:, None]


def test_frechet_distance_of_one_dimensional_sets_by_hand():
    # FID in 1-D: (mu_r - mu_f)^2 + var_r + var_f - 2 sqrt(var_r var_f), unbiased variances.
    # {0, 2}: mean 1, var 2; {1, 3}: mean 2, var 2 -> 1 + 2 + 2 - 2*2 = 1.
    assert frechet_distance(_column(0, 2), _column(1, 3)) == pytest.approx(1.0)
    # {10, 12}: mean 11, var 2; {10, 14}: mean 12, var 8 -> 1 + 2 + 8 - 2*4 = 3.
    assert frechet_distance(_column(10, 12), _column(10, 14)) == pytest.approx(3.0)
    assert math.isnan(frechet_distance(_column(0, 2), _column(1)))  # one image: no covariance


def test_intra_class_fid_is_the_mean_over_classes_by_hand():
    real = _column(0, 2, 10, 12)
    fake = _column(1, 10, 3, 14)
    real_labels = torch.tensor([0, 0, 1, 1])
    fake_labels = torch.tensor([0, 1, 0, 1])  # class 0: {1, 3}; class 1: {10, 14}
    mean, per_class = intra_class_fid(real, real_labels, fake, fake_labels, 2)
    assert per_class == pytest.approx([1.0, 3.0])
    assert mean == pytest.approx(2.0)
    # The same images pooled: one class, one FID, no mean to speak of.
    pooled = frechet_distance(real, fake)
    assert intra_class_fid(real, real_labels * 0, fake, fake_labels * 0, 1)[0] == pytest.approx(
        pooled
    )
    # A class the generator was never asked for has no FID, and so the mean has none either.
    mean, per_class = intra_class_fid(real, real_labels, fake, fake_labels, 3)
    assert math.isnan(mean) and math.isnan(per_class[2]) and per_class[:2] == pytest.approx([1, 3])


def _images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 7, 7, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear")


def test_the_scorer_reports_intra_class_fid_only_for_labels_on_both_sides(tmp_path):
    classifier, _ = load_classifier(random_classifier_file(tmp_path / "c.pt"))
    scorer = Scorer(DigitsExtractor(classifier), kid_subsets=5, kid_subset_size=50, intra_fid=True)
    real, fake = _images(120, 0), _images(120, 1)
    real_labels, fake_labels = torch.arange(120) % 3, torch.arange(120) % 3
    scorer.add_real([(real, real_labels)], (0.0, 1.0), num_classes=3)
    scorer.add_generated([(fake, fake_labels)], (0.0, 1.0), conditional=True, num_classes=3)
    scores = scorer.compute()
    # Each class's FID is torchmetrics' FID on that class's features: check one against a
    # scorer that only ever saw class 2.
    only_two = Scorer(DigitsExtractor(classifier), kid_subsets=5, kid_subset_size=20)
    only_two.add_real([real[real_labels == 2]], (0.0, 1.0))
    only_two.add_generated([fake[fake_labels == 2]], (0.0, 1.0))
    assert scorer.per_class_fid[2] == pytest.approx(only_two.compute()["fid_digits"], rel=1e-6)
    assert scores["intra_fid_digits"] == pytest.approx(sum(scorer.per_class_fid) / 3)
    # An unconditional model (no requested labels): no intra-class FID, the real labels idle.
    scorer.reset_generated()
    scorer.add_generated([fake], (0.0, 1.0))
    assert "intra_fid_digits" not in scorer.compute() and scorer.per_class_fid is None
    # Not asked for (the training default): none either, and no features kept for it.
    off = Scorer(DigitsExtractor(classifier), kid_subsets=5, kid_subset_size=50)
    off.add_real([(real, real_labels)], (0.0, 1.0), num_classes=3)
    off.add_generated([(fake, fake_labels)], (0.0, 1.0), conditional=True, num_classes=3)
    assert "intra_fid_digits" not in off.compute() and not off.feature_sets.real_features
