"""Precision, recall, density and coverage of generated samples in an extractor's feature space.

FID folds fidelity ("do the samples look real") and diversity ("do they cover the data") into
one number; these four split them:

* **precision** and **recall** (Kynkäänniemi et al., NeurIPS 2019, "Improved Precision and
  Recall Metric for Assessing Generative Models"): every real feature gets a ball reaching its
  k-th nearest real neighbour (k=3 in the paper); precision is the share of generated features
  inside at least one real ball. Recall is the same with the roles swapped: the share of real
  features inside at least one generated ball.
* **density** and **coverage** (Naeem et al., ICML 2020, "Reliable Fidelity and Diversity
  Metrics for Generative Models"; k=5 in the paper): density counts *how many* real balls hold
  each generated feature (divided by k, averaged; about 1 when the two sets follow one
  distribution, above 1 when samples crowd round real modes), so a few outliers among the real
  images cannot inflate it the way they inflate precision; coverage is the share of real
  features whose own ball holds at least one generated feature, which unlike recall does not
  trust the generated set's (possibly huge) balls.

Balls are closed (distance <= radius), as written in both papers; the reference code of Naeem
et al. uses ``<``, which differs only for exact ties. A point is not its own neighbour.

All four come from three pairwise-distance passes (real-real and generated-generated for the
radii, generated-real for the scores) over blocks of rows (:func:`torch.cdist` on
``chunk_size`` rows at a time), so 10k x 10k features never hold a 10k x 10k matrix: memory is
``chunk_size x N`` distances. Cost: ``python -m benchmarks.prdc`` (BENCHMARKS.md).
"""

from __future__ import annotations

import torch

#: k of precision/recall (Kynkäänniemi et al. 2019) and of density/coverage (Naeem et al. 2020).
PRECISION_RECALL_K = 3
DENSITY_COVERAGE_K = 5
#: Rows per cdist block: 1024 x 10k float32 distances = 40 MB.
CHUNK_SIZE = 1024


def check_k(k: int, what: str) -> int:
    """``k`` must be a positive integer (the ``what`` config key is named in the error)."""
    from gan_lightning.errors import ConfigError

    if isinstance(k, bool) or int(k) != k or int(k) < 1:
        raise ConfigError(f"{what}={k!r} must be a whole number >= 1 (the papers use 3 and 5).")
    return int(k)


def knn_radii(
    features: torch.Tensor, ks: tuple[int, ...], chunk_size: int = CHUNK_SIZE
) -> dict[int, torch.Tensor]:
    """For each k in ``ks``: the distance of every row to its k-th nearest *other* row (N,).

    Rows that are exact duplicates are each other's neighbours at distance 0; a row is never
    its own. Needs more than ``max(ks)`` rows.
    """
    n = features.shape[0]
    top = max(ks)
    if n <= top:
        raise ValueError(f"{n} feature vectors cannot have a {top}-th nearest neighbour")
    radii = {k: torch.empty(n, dtype=features.dtype, device=features.device) for k in ks}
    for start in range(0, n, chunk_size):
        block = torch.cdist(features[start : start + chunk_size], features)  # (c, N)
        rows = torch.arange(block.shape[0], device=features.device)
        block[rows, rows + start] = float("inf")  # not its own neighbour
        nearest = block.topk(top, dim=1, largest=False).values  # (c, top), ascending
        for k in ks:
            radii[k][start : start + block.shape[0]] = nearest[:, k - 1]
    return radii


def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    precision_recall_k: int = PRECISION_RECALL_K,
    density_coverage_k: int = DENSITY_COVERAGE_K,
    chunk_size: int = CHUNK_SIZE,
    real_radii: dict[int, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Precision, recall, density, coverage of ``fake`` (M, D) against ``real`` (N, D).

    Computed in the features' dtype (float32 from the extractors: half the time of float64;
    rounding can only flip a point lying within rounding error of a ball's sphere).
    Single- and multi-process runs hold the same features in the same order, so they agree
    exactly. NaN for all four when either set is too small for its k (a score that cannot be
    computed is not a zero).

    ``real_radii``: :func:`knn_radii` of ``real`` at both k, when the caller keeps them (the
    real images do not change between evaluations: a third of the work saved).
    """
    pr_k, dc_k = int(precision_recall_k), int(density_coverage_k)
    n, m = real.shape[0], fake.shape[0]
    if n <= max(pr_k, dc_k) or m <= pr_k:
        nan = float("nan")
        return {"precision": nan, "recall": nan, "density": nan, "coverage": nan}
    fake = fake.to(real.dtype)
    if real_radii is None:
        real_radii = knn_radii(real, (pr_k, dc_k), chunk_size)
    real_radii = {k: r.to(real.device, real.dtype) for k, r in real_radii.items()}
    fake_radius = knn_radii(fake, (pr_k,), chunk_size)[pr_k]  # (M,)
    precise = 0  # generated features inside some real k=pr_k ball
    density_count = 0  # (generated, real) pairs with the generated one in the real k=dc_k ball
    recalled = torch.zeros(n, dtype=torch.bool, device=real.device)
    nearest_fake = torch.full((n,), float("inf"), dtype=real.dtype, device=real.device)
    for start in range(0, m, chunk_size):
        block = torch.cdist(fake[start : start + chunk_size], real)  # (c, N)
        # count_nonzero and amin: 3x faster than sum() of bools and min().values on a CPU.
        precise += int(torch.count_nonzero((block <= real_radii[pr_k]).any(dim=1)))
        density_count += int(torch.count_nonzero(block <= real_radii[dc_k]))
        recalled |= (block <= fake_radius[start : start + block.shape[0], None]).any(dim=0)
        nearest_fake = torch.minimum(nearest_fake, block.amin(dim=0))
    return {
        "precision": precise / m,
        "recall": float(recalled.double().mean()),
        "density": density_count / (dc_k * m),
        "coverage": float((nearest_fake <= real_radii[dc_k]).double().mean()),
    }
