"""KID with its subsets scored from whole kernel matrices: torchmetrics' numbers, a fraction of
its time.

torchmetrics' ``KernelInceptionDistance.compute`` draws ``subsets`` random subsets of
``subset_size`` real and generated features and, for each, computes three polynomial-kernel
matrices of ``subset_size``^2 entries. At the training-time setting (2000 images, 100 subsets
of 500) that is 6x the arithmetic of computing the three kernel matrices of all images once,
and it was half of a periodic evaluation's time (the profile in BENCHMARKS.md). Here the whole
matrices are computed once; each subset's sums are then read from them through its 0/1
membership matrix (one matrix product per kernel for all subsets). The subsets are the same
``torch.randperm`` draws, in the same order, as torchmetrics', so the scores equal torchmetrics'
up to the rounding of sums taken in another order (tested).

Where the whole matrices would cost more arithmetic or memory than the subsets (``gan-evaluate``
at 10k images and subsets of 1000), torchmetrics' own loop runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.data import dim_zero_cat

#: The largest whole kernel matrix built (entries): 3000^2 float32 = 36 MB, three of them.
MAX_ENTRIES = 3000 * 3000


def subset_sums(kernel: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``kernel[rows[s]][:, cols[s]].sum()`` for every subset s: rows/cols are (S, m) indices,
    distinct within a subset (``randperm`` draws). Through the subsets' 0/1 membership
    matrices, one matrix product for all of them (gathers of the sub-blocks are slower)."""
    left = torch.zeros(rows.shape[0], kernel.shape[0], dtype=kernel.dtype, device=kernel.device)
    left.scatter_(1, rows, 1.0)
    right = torch.zeros(cols.shape[0], kernel.shape[1], dtype=kernel.dtype, device=kernel.device)
    right.scatter_(1, cols, 1.0)
    return ((left @ kernel) * right).sum(dim=1, dtype=torch.float64)  # (S,)


class BlockKID(KernelInceptionDistance):
    """``KernelInceptionDistance`` whose ``compute`` scores all subsets from whole kernels.

    The real images' term (their kernel's subset sums) is kept from the last ``compute`` and
    reused while the real features and the subsets' draws are equal to that call's (training's
    periodic scoring: real features kept, subsets from a fixed seed), a third of the work."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (real features, subset rows, their xx term) of the last compute.
        self._real_term: tuple[Tensor, Tensor, Tensor] | None = None

    def _real_subset_term(self, real: Tensor, rows: Tensor) -> Tensor:
        """Per subset, the sum of the real kernel over distinct pairs (S,), float64."""
        cached = self._real_term
        if (
            cached is not None
            and cached[0].shape == real.shape
            and cached[1].shape == rows.shape
            and cached[0].device == real.device
            and torch.equal(cached[1], rows)
            and torch.equal(cached[0], real)
        ):
            return cached[2]
        k_rr = self._kernel(real, real)
        xx = subset_sums(k_rr, rows, rows) - k_rr.diagonal()[rows].sum(1, dtype=torch.float64)
        self._real_term = (real.detach().clone(), rows.clone(), xx)
        return xx

    def _whole_kernels_pay(self, n_real: int, n_fake: int) -> bool:
        whole = n_real * n_real + n_fake * n_fake + n_real * n_fake
        per_subsets = 3 * self.subsets * self.subset_size**2
        return whole < per_subsets and max(n_real, n_fake) ** 2 <= MAX_ENTRIES

    def _kernel(self, f1: Tensor, f2: Tensor) -> Tensor:
        gamma = 1.0 / f1.shape[1] if self.gamma is None else self.gamma
        return (f1 @ f2.T).mul_(gamma).add_(self.coef).pow_(self.degree)

    def compute(self) -> tuple[Tensor, Tensor]:
        real = dim_zero_cat(self.real_features)
        fake = dim_zero_cat(self.fake_features)
        n_real, n_fake, m = real.shape[0], fake.shape[0], self.subset_size
        if n_real < m or n_fake < m or not self._whole_kernels_pay(n_real, n_fake):
            return super().compute()  # (its own checks and messages, or its loop)
        rows, cols = [], []
        for _ in range(self.subsets):  # torchmetrics' draws, in its order
            rows.append(torch.randperm(n_real)[:m])
            cols.append(torch.randperm(n_fake)[:m])
        rows = torch.stack(rows).to(real.device)
        cols = torch.stack(cols).to(real.device)
        # The kernels in the features' dtype, as torchmetrics computes them.
        xx = self._real_subset_term(real, rows)
        k_ff, k_rf = self._kernel(fake, fake), self._kernel(real, fake)
        yy = subset_sums(k_ff, cols, cols) - k_ff.diagonal()[cols].sum(1, dtype=torch.float64)
        xy = subset_sums(k_rf, rows, cols)
        scores = (xx + yy) / (m * (m - 1)) - 2 * xy / (m**2)
        dtype = dim_zero_cat(self.real_features).dtype
        return scores.mean().to(dtype), scores.std(unbiased=False).to(dtype)
