"""Intra-class FID of a class-conditional generator: the mean over classes c of the FID between
the generated images asked for class c and the real images of class c.

The overall FID of a conditional model does not see a generator that draws a perfect 7 when
asked for a 3, as long as the digits come out in the right proportions; label agreement
(:class:`~gan_lightning.metrics.scores.LabelAgreement`) sees the wrong class but not a poor
7. Intra-class FID (Miyato & Koyama 2018, "cGANs with Projection Discriminator", and the
conditional-GAN papers after it) scores each class's samples against that class's real images.

Each per-class FID is torchmetrics' :class:`FrechetInceptionDistance` on the already-extracted
features of that class, so it is the same estimator as the run's FID; computed from gathered
features (:class:`~gan_lightning.metrics.feature_sets.FeatureSets`), hence its own sync is off.
"""

from __future__ import annotations

import math
import warnings

import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from gan_lightning.metrics.feature_sets import Precomputed


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """torchmetrics' FID between two sets of features (N, D), (M, D); NaN below 2 of either."""
    if real.shape[0] < 2 or fake.shape[0] < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        fid = FrechetInceptionDistance(feature=Precomputed(real.shape[1]), sync_on_compute=False)
    fid = fid.to(real.device)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    return float(fid.compute())


def intra_class_fid(
    real: torch.Tensor,
    real_labels: torch.Tensor,
    fake: torch.Tensor,
    fake_labels: torch.Tensor,
    num_classes: int,
) -> tuple[float, list[float]]:
    """(mean of the per-class FIDs, the per-class FIDs) over classes ``0..num_classes-1``.

    A class with fewer than two real or two generated images has no FID (NaN), and then neither
    has the mean: a mean over the classes that happened to be drawn would not compare with one
    over all of them. Raise the number of samples instead.
    """
    per_class = [
        frechet_distance(real[real_labels == c], fake[fake_labels == c])
        for c in range(int(num_classes))
    ]
    if not per_class or any(math.isnan(v) for v in per_class):
        return float("nan"), per_class
    return sum(per_class) / len(per_class), per_class
