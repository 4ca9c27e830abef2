"""Extracted features kept whole (not as running sums), gathered from every rank.

FID only needs sums of features and of their outer products, but the k-nearest-neighbour
scores (:mod:`gan_lightning.metrics.prdc`) and the per-class FIDs
(:mod:`gan_lightning.metrics.intra_fid`) need the feature vectors themselves, with their
class labels. :class:`FeatureSets` keeps them as torchmetrics ``cat`` states, so on ``compute``
every rank holds the features of all ranks, in rank order (each rank adds its contiguous share
once, :func:`~gan_lightning.metrics.scores.shard`): the scores computed from them equal the
single-process ones (tests/metrics/test_ddp.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import Metric


class Precomputed(nn.Module):
    """The identity, posing as torchmetrics' feature network for already-extracted features
    (it declares ``num_features``, so torchmetrics never probes it with a dummy image)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class FeatureSets(Metric):
    """Real and generated features (and their labels, where there are any), all ranks'.

    Real features survive :meth:`reset` (like FID's ``reset_real_features=False``): they are
    extracted once per run. Every rank must call :meth:`update` alike (an empty share adds an
    empty tensor, and ``labels`` is given on every rank or on none), or the gather would wait
    for a rank that never joins.
    """

    full_state_update = False

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_features = int(num_features)
        for name in ("real_features", "real_labels", "fake_features", "fake_labels"):
            self.add_state(name, [], dist_reduce_fx="cat")

    def update(self, features: torch.Tensor, labels: torch.Tensor | None, real: bool) -> None:
        prefix = "real" if real else "fake"
        getattr(self, f"{prefix}_features").append(features.float())
        if labels is not None:
            getattr(self, f"{prefix}_labels").append(labels.long().to(features.device))

    @staticmethod
    def _joined(state: Any, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
        if isinstance(state, torch.Tensor):  # synced: one gathered tensor
            return state
        if not state:
            return None if dtype == torch.long else torch.zeros(shape, dtype=dtype)
        return torch.cat(state)

    def compute(self) -> dict[str, torch.Tensor | None]:
        """``real``/``fake`` (N, D) features and ``real_labels``/``fake_labels`` (N,) or None."""
        empty = (0, self.num_features)
        return {
            "real": self._joined(self.real_features, empty, torch.float32),
            "fake": self._joined(self.fake_features, empty, torch.float32),
            "real_labels": self._joined(self.real_labels, (0,), torch.long),
            "fake_labels": self._joined(self.fake_labels, (0,), torch.long),
        }

    def reset(self) -> None:
        """Forget the generated features; the real ones stay."""
        real_features, real_labels = list(self.real_features), list(self.real_labels)
        super().reset()
        self.real_features, self.real_labels = real_features, real_labels
