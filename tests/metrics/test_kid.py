"""BlockKID: torchmetrics' KID, its subsets read from whole kernel matrices; the same draws, the
same numbers (to rounding), and torchmetrics' own loop where whole matrices would not pay."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.image.kid import KernelInceptionDistance

from gan_lightning.metrics import kid as kid_module
from gan_lightning.metrics.kid import BlockKID, subset_sums
from gan_lightning.metrics.scores import Precomputed


def scored(cls, real, fake, subsets=20, subset_size=60, seed=3):
    metric = cls(feature=Precomputed(real.shape[1]), subsets=subsets, subset_size=subset_size)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    torch.manual_seed(seed)
    return [float(v) for v in metric.compute()]


def test_subset_sums_equal_the_sums_of_the_sub_blocks():
    kernel = torch.arange(30, dtype=torch.float64).reshape(5, 6)
    rows, cols = torch.tensor([[0, 2], [4, 1]]), torch.tensor([[5, 0], [3, 2]])  # no repeats
    expected = [float(kernel[r][:, c].sum()) for r, c in zip(rows, cols, strict=True)]
    assert subset_sums(kernel, rows, cols).tolist() == expected


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_block_kid_equals_torchmetrics_on_the_same_draws(shift):
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 16, generator=g).relu()
    fake = (torch.randn(150, 16, generator=g) + shift).relu()
    ours, theirs = scored(BlockKID, real, fake), scored(KernelInceptionDistance, real, fake)
    assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-7)
    assert ours[0] > 0.01 if shift else abs(ours[0]) < 0.01


def test_where_whole_kernels_do_not_pay_torchmetrics_loop_runs(monkeypatch):
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(100, 8, generator=g), torch.randn(100, 8, generator=g)
    monkeypatch.setattr(kid_module, "MAX_ENTRIES", 50 * 50)
    calls = []
    original = KernelInceptionDistance.compute
    monkeypatch.setattr(
        KernelInceptionDistance, "compute", lambda self: calls.append(1) or original(self)
    )
    assert scored(BlockKID, real, fake) == scored(KernelInceptionDistance, real, fake)
    assert len(calls) == 2  # the fallback, then the reference itself
    with pytest.raises(ValueError, match="subset_size"):
        scored(BlockKID, real[:10], fake)


def test_the_real_term_is_reused_only_for_the_same_real_features_and_draws(monkeypatch):
    """Periodic scoring keeps the real features and draws the same subsets: the real kernel is
    built once; new generated features, new real features or other draws still score exactly
    as a fresh metric does."""
    g = torch.Generator().manual_seed(2)
    real = torch.randn(200, 16, generator=g).relu()
    fakes = [(torch.randn(150, 16, generator=g) + s).relu() for s in (0.0, 0.4)]
    metric = BlockKID(feature=Precomputed(16), subsets=20, subset_size=60)
    metric.update(real, real=True)
    real_kernels = []
    original = BlockKID._kernel
    monkeypatch.setattr(
        BlockKID,
        "_kernel",
        lambda self, a, b: (
            (real_kernels.append(1) if self is metric and a is b else None) or original(self, a, b)
        ),
    )

    def score(seed: int) -> list[float]:
        torch.manual_seed(seed)
        return [float(v) for v in metric.compute()]

    for fake in fakes:  # same real features, same draws: one real kernel for both
        metric.fake_features.clear()
        metric.update(fake, real=False)
        assert score(3) == pytest.approx(scored(BlockKID, real, fake), rel=1e-6, abs=1e-9)
    assert len(real_kernels) == 1 + 2  # the real kernel once, the generated one per compute
    metric.fake_features.clear()  # (an update: torchmetrics caches compute() until one)
    metric.update(fakes[1], real=False)
    assert score(4) == pytest.approx(scored(BlockKID, real, fakes[1], seed=4), rel=1e-6, abs=1e-9)
    other_real = real.flip(0)  # same values, other order: other subsets, not the cache
    metric.real_features.clear()
    metric.update(other_real, real=True)
    assert score(4) == pytest.approx(
        scored(BlockKID, other_real, fakes[1], seed=4), rel=1e-6, abs=1e-9
    )
