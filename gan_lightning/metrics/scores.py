"""FID, KID, IS and a class histogram over one feature extractor: the core shared by the
training callback and the evaluate CLI.

Why features are extracted here and not by torchmetrics: FID, KID and IS would each run their
own copy of the network over the same images (three forward passes, three copies of
InceptionV3). Instead :class:`Scorer` runs the extractor once per image and hands the features
to torchmetrics' metrics through a pass-through "network" that declares ``num_features`` (so
torchmetrics never probes it with a 299x299 dummy image).

Distributed runs: each rank scores a contiguous share of the images (:func:`shard`) and calls
``update`` ONCE per set, so torchmetrics' all-gather returns the features in rank order, i.e.
in the order one process would have seen them; KID's and IS's random subsets are drawn under
a fixed seed. The result equals the single-process one on the same images, KID subsets
included (tests/metrics/test_ddp.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.extractors import FeatureExtractor
from gan_lightning.metrics.feature_sets import FeatureSets, Precomputed
from gan_lightning.metrics.intra_fid import intra_class_fid
from gan_lightning.metrics.kid import BlockKID
from gan_lightning.metrics.prdc import (
    DENSITY_COVERAGE_K,
    PRECISION_RECALL_K,
    check_k,
    knn_radii,
    prdc,
)
from gan_lightning.utils.streams import seeded_streams

#: A class counts as "covered" when it holds at least this fraction of a uniform share
#: (10 classes: >= 1% of the samples), so a few stray samples do not count as a mode.
COVERAGE_MIN_SHARE = 0.1


class ClassHistogram(Metric):
    """Counts of the extractor's argmax class over generated images (summed across ranks).

    ``compute`` returns the number of classes covered (see :data:`COVERAGE_MIN_SHARE`) and
    KL(histogram || uniform) in nats: 0 for a perfectly balanced generator, log(K) (2.30 for
    digits) for one that only draws one class.
    """

    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.add_state(
            "counts", torch.zeros(self.num_classes, dtype=torch.long), dist_reduce_fx="sum"
        )

    def update(self, logits: torch.Tensor) -> None:
        self.counts += torch.bincount(logits.argmax(dim=1), minlength=self.num_classes)

    def compute(self) -> dict[str, torch.Tensor]:
        p = self.counts.double() / self.counts.sum().clamp(min=1)
        covered = (p >= COVERAGE_MIN_SHARE / self.num_classes).sum()
        kl = torch.where(p > 0, p * torch.log(p * self.num_classes), torch.zeros_like(p)).sum()
        return {"covered": covered, "kl": kl, "histogram": p}


class LabelAgreement(Metric):
    """How often the extractor's class of a generated image is the class it was asked for
    (a conditional GAN's "does label 3 draw a 3"), summed across ranks."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.correct += (logits.argmax(dim=1) == labels.to(logits.device)).sum()
        self.total += labels.numel()

    def compute(self) -> torch.Tensor:
        return self.correct.double() / self.total.clamp(min=1)


class Diversity(Metric):
    """Mean pairwise L2 distance between the features of the first ``size`` images: how spread
    out a set of samples is. A collapsed generator's samples sit close together; the callback
    compares it with the same statistic of real images.

    Each rank keeps its first ``size`` features; gathered in rank order (the shards are
    contiguous) their first ``size`` are the first ``size`` of the whole set, so the value
    equals the single-process one."""

    full_state_update = False

    def __init__(self, size: int = 512, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = int(size)
        self.add_state("features", [], dist_reduce_fx="cat")

    def update(self, features: torch.Tensor) -> None:
        kept = sum(f.shape[0] for f in self.features)
        if kept < self.size:
            self.features.append(features[: self.size - kept].double())

    def compute(self) -> torch.Tensor:
        features = self.features
        if isinstance(features, list):
            features = torch.cat(features) if features else torch.zeros(0, 1)
        features = features[: self.size]
        if features.shape[0] < 2:
            return torch.tensor(float("nan"))
        n = features.shape[0]
        return torch.cdist(features, features).sum() / (n * (n - 1))


def shard(n: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s contiguous share of ``n`` items (sizes differ by at most one).

    Contiguous, not strided: gathered in rank order, the shares are the original order.
    """
    base, extra = divmod(int(n), int(world_size))
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def check_sample_counts(
    num_samples: int, kid_subset_size: int, what: str = "metrics.num_samples"
) -> None:
    """FID needs >= 2 images; KID draws subsets of ``kid_subset_size`` from them."""
    if int(num_samples) < 2:
        raise ConfigError(f"{what}={num_samples}: FID needs at least 2 images.")
    if int(kid_subset_size) > int(num_samples):
        raise ConfigError(
            f"{what}={num_samples} is smaller than metrics.kid_subset_size={kid_subset_size} "
            "(KID draws subsets of that size from the images); raise the former or set "
            f"metrics.kid_subset_size<={num_samples}."
        )


class Scorer(nn.Module):
    """FID + KID (+ IS, + class histogram when the extractor has classes) on one extractor,
    + precision/recall/density/coverage (``prdc``) and, for a conditional model on labelled
    data, intra-class FID, all from the same features.

    Real features are added once (:meth:`add_real`) and kept across :meth:`reset_generated`;
    generated features are replaced every evaluation.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        seed: int = 0,
        batch_size: int = 500,
        prdc: bool = False,
        precision_recall_k: int = PRECISION_RECALL_K,
        density_coverage_k: int = DENSITY_COVERAGE_K,
        intra_fid: bool = False,
    ) -> None:
        super().__init__()
        if kid_subsets < 1 or kid_subset_size < 2 or is_splits < 1 or batch_size < 1:
            raise ConfigError(
                "metrics: kid_subsets, is_splits and batch_size must be >= 1 and kid_subset_size "
                f">= 2; got {kid_subsets}, {is_splits}, {batch_size}, {kid_subset_size}."
            )
        self.extractor = extractor
        self.name = extractor.name
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.kid_subset_size = int(kid_subset_size)
        with warnings.catch_warnings():
            # "... will save all extracted features in buffer": by design (KID subsets, IS splits).
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            self.fid = FrechetInceptionDistance(
                feature=Precomputed(extractor.num_features), reset_real_features=False
            )
            self.kid = BlockKID(  # torchmetrics' KID, its subsets from whole kernels
                feature=Precomputed(extractor.num_features),
                subsets=int(kid_subsets),
                subset_size=int(kid_subset_size),
                reset_real_features=False,
            )
            self.inception_score = (
                InceptionScore(feature=Precomputed(extractor.num_classes), splits=int(is_splits))
                if extractor.num_classes
                else None
            )
        self.classes = ClassHistogram(extractor.num_classes) if extractor.reports_classes else None
        self.agreement = LabelAgreement() if extractor.reports_classes else None
        self.diversity = Diversity()
        self.prdc = bool(prdc)
        self.intra_fid = bool(intra_fid)
        self.precision_recall_k = check_k(precision_recall_k, "metrics.precision_recall_k")
        self.density_coverage_k = check_k(density_coverage_k, "metrics.density_coverage_k")
        #: Whole features (+ labels): what the k-NN scores and the per-class FIDs need.
        self.feature_sets = FeatureSets(extractor.num_features)
        #: Classes of the real images' labels (0: unlabelled data) and of the requested ones.
        self.real_classes = 0
        self.num_classes = 0
        self.per_class_fid: list[float] | None = None
        #: k-NN radii of the real features (computed once: the real images do not change).
        self._real_radii: dict[int, torch.Tensor] | None = None
        #: (C, H, W) of the images scored last, real and generated (the protocol's resize).
        self.image_shapes: dict[str, tuple[int, ...] | None] = {"real": None, "generated": None}
        self.real_diversity: float | None = None
        self._shape: tuple[int, ...] | None = None
        self.num_real = 0
        self.num_generated = 0
        #: Whether the generated images came with requested labels (a conditional model).
        self.conditional = False

    # ------------------------------------------------------------------ features
    @torch.no_grad()
    def extract(
        self, batches: Iterable[Any], pixel_range: Sequence[float]
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """All features, logits and requested labels of an iterable of image batches (or
        ``(images, labels)`` pairs, labels ``None`` for unconditional samples), in order."""
        features, logits, labels = [], [], []
        self._shape = None
        for item in batches:
            images, wanted = item if isinstance(item, (tuple, list)) else (item, None)
            self._shape = tuple(int(s) for s in images.shape[1:])
            for start in range(0, images.shape[0], self.batch_size):
                f, z = self.extractor.extract(images[start : start + self.batch_size], pixel_range)
                features.append(f.float())
                if z is not None:
                    logits.append(z.float())
            if wanted is not None:
                labels.append(wanted)
        device = next(self.extractor.parameters()).device
        if not features:  # a rank with an empty share still takes part in the sync
            empty = torch.zeros(0, self.extractor.num_features, device=device)
            return (
                empty,
                torch.zeros(0, self.extractor.num_classes, device=device)
                if self.extractor.num_classes
                else None,
                None,
            )
        return (
            torch.cat(features),
            torch.cat(logits) if logits else None,
            torch.cat(labels).to(device) if labels else None,
        )

    @property
    def has_real(self) -> bool:
        return self.num_real > 0

    def _keep(self, features: torch.Tensor, labels: torch.Tensor | None, classes: int, real: bool):
        """Whole features for the k-NN scores and, when ``classes``, labels for the per-class
        FIDs; every rank alike (an empty share adds empty tensors)."""
        if classes and labels is None:
            labels = torch.zeros(0, dtype=torch.long, device=features.device)
        if self.prdc or classes:
            self.feature_sets.update(features, labels if classes else None, real=real)

    def add_real(
        self, batches: Iterable[Any], pixel_range: Sequence[float], num_classes: int = 0
    ) -> int:
        """Feature statistics of this rank's real images (once: they survive resets).

        ``batches``: images, or ``(images, labels)`` pairs when the data have ``num_classes``
        classes (the real side of intra-class FID)."""
        features, _, labels = self.extract(batches, pixel_range)
        self.image_shapes["real"] = self._shape
        self.real_classes = int(num_classes or 0)
        self._real_radii = None
        self._keep(features, labels, self.real_classes if self.intra_fid else 0, real=True)
        real = Diversity().to(features.device)
        real.update(features)
        self.real_diversity = float(real.compute())  # synced across ranks like the rest
        self.fid.update(features, real=True)
        self.kid.update(features, real=True)
        self.num_real += features.shape[0]
        return features.shape[0]

    def add_generated(
        self,
        batches: Iterable[Any],
        pixel_range: Sequence[float],
        conditional: bool = False,
        num_classes: int = 0,
    ) -> int:
        """Generated images (or ``(images, requested labels)`` pairs) of this rank.

        ``conditional``: the model was asked for classes, so label agreement is scored (on
        every rank alike, also one whose share is empty: the sync needs all of them).
        ``num_classes``: the labels' classes; with labelled real images, intra-class FID is
        scored over them."""
        self.conditional = bool(conditional)
        self.num_classes = int(num_classes or 0)
        features, logits, labels = self.extract(batches, pixel_range)
        self.image_shapes["generated"] = self._shape
        intra = self.num_classes if self._intra_fid_due else 0
        self._keep(features, labels, intra, real=False)
        self.diversity.update(features)
        self.fid.update(features, real=False)
        self.kid.update(features, real=False)
        if self.inception_score is not None:
            self.inception_score.update(logits)
        if self.classes is not None:
            self.classes.update(logits)
        if self.agreement is not None and labels is not None:
            self.agreement.update(logits, labels)
        self.num_generated += features.shape[0]
        return features.shape[0]

    # ------------------------------------------------------------------ scores
    def compute(self) -> dict[str, float]:
        """Synced scores, named after the extractor (``fid_digits``, ``kid_mean_digits``...)."""
        with seeded_streams(self.seed):  # KID subsets and IS splits: same draw every time
            fid = self.fid.compute()
            kid_mean, kid_std = self.kid.compute()
            scores = {
                f"fid_{self.name}": float(fid),
                f"kid_mean_{self.name}": float(kid_mean),
                f"kid_std_{self.name}": float(kid_std),
            }
            if self.inception_score is not None:
                is_mean, is_std = self.inception_score.compute()
                scores[f"is_{self.name}"] = float(is_mean)
                scores[f"is_std_{self.name}"] = float(is_std)
        if self.classes is not None:
            classes = self.classes.compute()
            scores[f"classes_covered_{self.name}"] = float(classes["covered"])
            scores[f"class_kl_{self.name}"] = float(classes["kl"])
        if self.agreement is not None and self.conditional:
            scores[f"label_agreement_{self.name}"] = float(self.agreement.compute())
        if self.real_diversity:
            # 1 = as spread out as real images; well below 1: samples bunch together.
            scores[f"diversity_{self.name}"] = float(self.diversity.compute()) / self.real_diversity
        scores.update(self.feature_scores())
        return scores

    @property
    def _intra_fid_due(self) -> bool:
        """Intra-class FID: asked for, a conditional model, and labelled real images."""
        return bool(self.intra_fid and self.num_classes and self.real_classes)

    def feature_scores(self) -> dict[str, float]:
        """Precision, recall, density, coverage and intra-class FID from the whole (gathered)
        features; the per-class FIDs are kept in :attr:`per_class_fid`."""
        self.per_class_fid = None
        intra = self._intra_fid_due
        if not (self.prdc or intra):
            return {}
        sets = self.feature_sets.compute()
        scores = {}
        if self.prdc:
            ks = (self.precision_recall_k, self.density_coverage_k)
            if self._real_radii is None and sets["real"].shape[0] > max(ks):
                self._real_radii = knn_radii(sets["real"], ks)
            values = prdc(sets["real"], sets["fake"], *ks, real_radii=self._real_radii)
            scores.update({f"{k}_{self.name}": v for k, v in values.items()})
        if intra and sets["real_labels"] is not None and sets["fake_labels"] is not None:
            mean, self.per_class_fid = intra_class_fid(
                sets["real"],
                sets["real_labels"],
                sets["fake"],
                sets["fake_labels"],
                min(self.num_classes, self.real_classes),
            )
            scores[f"intra_fid_{self.name}"] = mean
        return scores

    def class_histogram(self) -> list[float] | None:
        if self.classes is None:
            return None
        return [float(p) for p in self.classes.compute()["histogram"]]

    def reset_generated(self) -> None:
        """Forget the generated images; real statistics stay (``reset_real_features=False``)."""
        self.fid.reset()
        self.kid.reset()
        if self.inception_score is not None:
            self.inception_score.reset()
        if self.classes is not None:
            self.classes.reset()
        if self.agreement is not None:
            self.agreement.reset()
        self.diversity.reset()
        self.feature_sets.reset()
        self.per_class_fid = None
        self.num_generated = 0
