"""Precision, recall, density and coverage against values computed by hand on 2-D points, and
against a plain full-matrix transcription of the papers' definitions on random features."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.prdc import check_k, knn_radii, prdc

#: Two real pairs and two real points far right; fakes: one between the left pair, one next to
#: the middle pair, one in empty space. With k=1 (see the test for each ball):
REAL = torch.tensor([[0, 0], [2, 0], [10, 0], [10, 3], [30, 0], [30, 1]], dtype=torch.float64)
FAKE = torch.tensor([[1, 0], [10, 1], [5, 5]], dtype=torch.float64)


def test_k_nearest_neighbour_radii_by_hand():
    points = torch.tensor([[0, 0], [1, 0], [0, 2], [3, 0]], dtype=torch.float64)
    radii = knn_radii(points, (1, 2, 3))
    # (0,0): 1, 2, 3  (1,0): 1, 2, sqrt5  (0,2): 2, sqrt5, sqrt13  (3,0): 2, 3, sqrt13
    assert radii[1].tolist() == [1, 1, 2, 2]
    assert radii[2].tolist() == [2, 2, pytest.approx(math.sqrt(5)), 3]
    assert radii[3].tolist() == pytest.approx([3, math.sqrt(5), math.sqrt(13), math.sqrt(13)])
    # A point is not its own neighbour, but a duplicate is one at distance 0.
    assert knn_radii(torch.tensor([[0.0], [0.0], [5.0]]), (1,))[1].tolist() == [0, 0, 5]
    with pytest.raises(ValueError, match="3-th nearest"):
        knn_radii(points[:3], (3,))


def test_the_four_scores_by_hand():
    # Real k=1 radii: 2, 2, 3, 3, 1, 1. Fake (1,0) lies in the balls of (0,0) and (2,0) (distance
    # 1 <= 2); fake (10,1) in those of (10,0) (1 <= 3) and (10,3) (2 <= 3); fake (5,5) in none
    # (its nearest real point, (10,3), is sqrt29 > 3 away).
    scores = prdc(REAL, FAKE, precision_recall_k=1, density_coverage_k=1)
    assert scores["precision"] == pytest.approx(2 / 3)  # 2 of 3 fakes in some real ball
    assert scores["density"] == pytest.approx((2 + 2 + 0) / (1 * 3))  # balls per fake, / k
    # Fake k=1 radii: all sqrt41 (the (5,5) point is sqrt41 from both others). Real points
    # within sqrt41 of some fake: the four on the left; (30,0) and (30,1) are 20+ away.
    assert scores["recall"] == pytest.approx(4 / 6)
    # Real points whose own ball holds a fake: (0,0) and (2,0) (fake at 1 <= 2), (10,0) (1 <= 3)
    # and (10,3) (2 <= 3); not (30,0) and (30,1) (radius 1, nearest fake 20+).
    assert scores["coverage"] == pytest.approx(4 / 6)


def test_a_real_outliers_big_ball_takes_in_the_stray_fake():
    # (0,20)'s nearest real point is (10,3), sqrt389 = 19.7 away: its ball holds the stray fake
    # (5,5) (sqrt250 = 15.8 away) but not (1,0) (sqrt401) nor (10,1) (sqrt461).
    outlier = torch.cat([REAL, torch.tensor([[0.0, 20.0]], dtype=torch.float64)])
    scores = prdc(outlier, FAKE, precision_recall_k=1, density_coverage_k=1)
    assert scores["precision"] == pytest.approx(1.0)
    assert scores["density"] == pytest.approx((2 + 2 + 1) / 3)


def test_balls_are_closed():
    # Real (0,0) and (3,4) are 5 apart: both radii (k=1) are 5. Fake (-3,-4) is exactly 5
    # from (0,0): on the sphere, which counts (<=), as in both papers.
    real = torch.tensor([[0, 0], [3, 4]], dtype=torch.float64)
    fake = torch.tensor([[-3, -4], [100, 100]], dtype=torch.float64)
    scores = prdc(real, fake, precision_recall_k=1, density_coverage_k=1)
    assert scores["precision"] == 0.5
    assert scores["density"] == 0.5
    assert scores["coverage"] == 0.5  # (0,0)'s ball holds (-3,-4); (3,4)'s holds none


def test_identical_sets_give_full_scores_and_density_of_k_plus_one_over_k():
    # 20 points: cdist computes each distance directly (no matmul), so d(a, b) == d(b, a) to
    # the bit and the copy of a ball's k-th neighbour sits exactly on its sphere.
    features = torch.randn(20, 16, generator=torch.Generator().manual_seed(0))
    scores = prdc(features, features.clone(), precision_recall_k=3, density_coverage_k=5)
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0
    # Each real ball holds its own centre's copy and its k neighbours' copies: k+1 per ball.
    assert scores["density"] == pytest.approx(6 / 5)


def _reference(real: torch.Tensor, fake: torch.Tensor, pr_k: int, dc_k: int) -> dict:
    """The definitions, one full distance matrix and no chunks."""

    def kth(points: torch.Tensor, k: int) -> torch.Tensor:
        d = torch.cdist(points, points, compute_mode="donot_use_mm_for_euclid_dist")
        return d.sort(dim=1).values[:, k]  # column 0 is the point itself

    d = torch.cdist(fake, real, compute_mode="donot_use_mm_for_euclid_dist")  # (M, N)
    r_pr, r_dc, f_pr = kth(real, pr_k), kth(real, dc_k), kth(fake, pr_k)
    return {
        "precision": float((d <= r_pr).any(1).double().mean()),
        "recall": float((d <= f_pr[:, None]).any(0).double().mean()),
        "density": float((d <= r_dc).sum()) / (dc_k * fake.shape[0]),
        "coverage": float((d.min(0).values <= r_dc).double().mean()),
    }


@pytest.mark.parametrize("chunk_size", [7, 64, 4096])
def test_chunked_distances_equal_the_full_matrix(chunk_size):
    g = torch.Generator().manual_seed(1)
    real = torch.randn(150, 8, generator=g, dtype=torch.float64)
    fake = torch.randn(130, 8, generator=g, dtype=torch.float64) * 1.3 + 0.4
    expected = _reference(real, fake, 3, 5)
    assert 0 < expected["precision"] < 1 and 0 < expected["coverage"] < 1  # not a trivial case
    assert prdc(real, fake, 3, 5, chunk_size=chunk_size) == pytest.approx(expected, abs=1e-12)


def test_too_few_points_give_nan_and_bad_k_is_a_config_error():
    real, fake = torch.randn(5, 2), torch.randn(10, 2)
    assert all(math.isnan(v) for v in prdc(real, fake, 3, 5).values())  # 5 reals: no 5th neighbour
    assert check_k(3, "metrics.precision_recall_k") == 3
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="metrics.density_coverage_k"):
            check_k(bad, "metrics.density_coverage_k")
