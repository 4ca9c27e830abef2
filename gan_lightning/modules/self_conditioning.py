"""Self-conditioning (Liu, Wang, Bau, Zhu & Torralba, CVPR 2020, "Diverse Image Generation via
Self-Conditioned GANs"): class-conditional training without labels.

An unconditional GAN trained on MNIST covers every digit but in the wrong proportions and
draws digits that sit between classes (BENCHMARKS.md). Labels fix both; self-conditioning
makes its own: the real images are clustered (k-means) in a feature space, the cluster id of a
real image is its label for a conditional D (projection or AC-GAN), and G draws its labels with
the clusters' frequencies, so every mode gets its share of samples and a sample commits to one.

Two feature spaces:

* ``pixels``: a PCA of the pixels of ``num_images`` training images, clustered once before
  the first step (the cheap variant the issue tested in plain PyTorch; about a second);
* ``discriminator``: a PCA of D's features (``extract``, flattened), clustered before the first step
  and again every ``recluster_every`` real batches as D learns (the paper's method). New
  clusters are matched to the old ones by the largest overlap of the same images' old and new
  ids (Hungarian, :func:`scipy.optimize.linear_sum_assignment`), so the ids G was trained on
  keep their meaning across a re-clustering.

The state (centroids, frequencies, the PCA and the fixed images' ids) is buffers of this module,
so it moves with the model, is saved in checkpoints and is restored by a resume; the clustering
draws from its own seeded generator, never from the training's random streams.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gan_lightning.errors import ConfigError

log = logging.getLogger(__name__)

FEATURES = ("pixels", "discriminator")

#: Images pushed through D at a time when re-clustering on its features.
CHUNK = 256


def squared_distances(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(M, k) squared Euclidean distances, by one matrix product (``cdist`` is slower here)."""
    cross = points @ centers.T
    return (points.square().sum(1, keepdim=True) - 2 * cross + centers.square().sum(1)).clamp_min(0)


def kmeans(
    points: torch.Tensor, k: int, generator: torch.Generator, iterations: int = 50
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ seeding on ``points`` (M, F): (centroids (k, F), ids (M,)).

    A cluster that empties is re-seeded with the point farthest from its centroid, so all ``k``
    ids stay in use (G is trained on each of them)."""
    points = points.float()
    m = points.shape[0]
    if m < k:
        raise ConfigError(
            f"model.self_conditioning: {m} images cannot make {k} clusters; lower "
            "model.self_conditioning.clusters or raise num_images."
        )
    first = int(torch.randint(m, (1,), generator=generator))
    centroids = [points[first]]
    nearest = squared_distances(points, points[first : first + 1]).squeeze(1)
    for _ in range(1, k):  # k-means++: the next seed with probability ~ squared distance
        pick = int(torch.multinomial(nearest + 1e-12, 1, generator=generator))
        centroids.append(points[pick])
        nearest = torch.minimum(
            nearest, squared_distances(points, points[pick : pick + 1]).squeeze(1)
        )
    centers = torch.stack(centroids)
    ids = squared_distances(points, centers).argmin(dim=1)
    for _ in range(int(iterations)):
        sums = torch.zeros_like(centers).index_add_(0, ids, points)
        counts = torch.bincount(ids, minlength=k)
        empty = counts == 0
        centers = torch.where(empty[:, None], centers, sums / counts.clamp_min(1)[:, None])
        distances = squared_distances(points, centers)
        if empty.any():  # re-seed each empty cluster at the worst-served point
            worst = distances.gather(1, ids[:, None]).squeeze(1).argsort(descending=True)
            for index, cluster in enumerate(torch.nonzero(empty).flatten().tolist()):
                centers[cluster] = points[worst[index]]
            distances = squared_distances(points, centers)
        new_ids = distances.argmin(dim=1)
        if torch.equal(new_ids, ids) and not empty.any():
            break
        ids = new_ids
    return centers, ids


def match_clusters(old: torch.Tensor, new: torch.Tensor, k: int) -> torch.Tensor:
    """``perm`` (k,) such that new cluster ``j`` takes the old id ``perm[j]``: the one-to-one
    map that keeps the most images in the cluster they were in (Hungarian on the overlap)."""
    from scipy.optimize import linear_sum_assignment

    overlap = torch.bincount(old.long() * k + new.long(), minlength=k * k).reshape(k, k)
    old_ids, new_ids = linear_sum_assignment(overlap.cpu().numpy(), maximize=True)
    perm = torch.empty(k, dtype=torch.long)
    perm[torch.as_tensor(new_ids)] = torch.as_tensor(old_ids)
    return perm


def pca(points: torch.Tensor, dims: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (F,), basis (F, dims)): the top principal directions of ``points`` (M, F).

    Up to 1024 features: the covariance's eigenvectors (MNIST's 784 pixels: a tenth of a
    second, where a full SVD of 10k images takes seconds); more (D's features): a randomized
    low-rank PCA on a private, seeded stream (the training's streams stay untouched)."""
    points = points.float()
    mean = points.mean(dim=0)
    centered = points - mean
    dims = min(int(dims), *points.shape)
    if points.shape[1] <= 1024:
        _, vectors = torch.linalg.eigh(centered.T @ centered)  # ascending eigenvalues
        return mean, vectors[:, -dims:].flip(1).contiguous()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        _, _, v = torch.pca_lowrank(centered, q=dims, center=False, niter=4)
    return mean, v[:, :dims].contiguous()


class SelfConditioning(nn.Module):
    """Cluster ids as labels for a conditional GAN trained on unlabelled images.

    Args:
        clusters: k of k-means; the nets are built with ``num_classes = clusters``
            (``conf/model/self_conditioning/*.yaml`` sets it). The paper uses a few dozen.
        features: ``pixels`` (PCA of pixels, clustered once) or ``discriminator`` (D's
            features, re-clustered every ``recluster_every`` real batches).
        dims: principal components of the pixels or of D's features that are clustered.
        num_images: training images that are clustered (a fixed, seeded subset).
        recluster_every: real batches between re-clusterings on D's features (0: never).
        iterations: Lloyd iterations per clustering.
        seed: the clustering's own random stream (subset and seeding).
    """

    def __init__(
        self,
        clusters: int = 20,
        features: str = "pixels",
        dims: int = 32,
        num_images: int = 10000,
        recluster_every: int = 0,
        iterations: int = 50,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if features not in FEATURES:
            raise ConfigError(
                f"model.self_conditioning.features={features!r} is not known; choose one of "
                f"{list(FEATURES)}."
            )
        for key, value, low in (
            ("clusters", clusters, 2),
            ("dims", dims, 1),
            ("num_images", num_images, 1),
            ("recluster_every", recluster_every, 0),
            ("iterations", iterations, 1),
        ):
            if int(value) < low:
                raise ConfigError(f"model.self_conditioning.{key}={value} must be >= {low}.")
        if int(num_images) < int(clusters):
            raise ConfigError(
                f"model.self_conditioning.num_images={num_images} < clusters={clusters}: each "
                "cluster needs images; raise num_images."
            )
        if recluster_every and features != "discriminator":
            raise ConfigError(
                f"model.self_conditioning.recluster_every={recluster_every} re-clusters D's "
                f"features, but features={features!r} are fixed; set features=discriminator "
                "or recluster_every=0."
            )
        self.clusters = int(clusters)
        self.features = features
        self.dims = int(dims)
        self.num_images = int(num_images)
        self.recluster_every = int(recluster_every)
        self.iterations = int(iterations)
        self.seed = int(seed)
        # Shapes that depend on the data are set by the first fit (and by a checkpoint's load).
        self.register_buffer("centroids", torch.zeros(self.clusters, 0))
        self.register_buffer("frequencies", torch.full((self.clusters,), 1.0 / self.clusters))
        self.register_buffer("pca_mean", torch.zeros(0))
        self.register_buffer("pca_basis", torch.zeros(0, 0))
        self.register_buffer("members", torch.zeros(0, dtype=torch.long))  # the subset's ids
        self.register_buffer("fits", torch.zeros((), dtype=torch.long))

    @property
    def fitted(self) -> bool:
        return int(self.fits) > 0

    def due(self, batches_seen: int) -> bool:
        """Whether to re-cluster before this batch (never at batch 0: the first fit is done)."""
        return (
            bool(self.recluster_every)
            and batches_seen > 0
            and (batches_seen % self.recluster_every == 0)
        )

    # ------------------------------------------------------------------ features
    def embed(self, points: torch.Tensor) -> torch.Tensor:
        """(N, dims): the principal components of images' pixels or of D's features (N, ...)."""
        flat = points.detach().flatten(1).float()
        return (flat - self.pca_mean) @ self.pca_basis

    def assign(self, points: torch.Tensor) -> torch.Tensor:
        """The nearest centroid's id (N,) for images (``pixels``) or D's features of them."""
        if not self.fitted:
            raise RuntimeError("SelfConditioning.assign before the first clustering")
        return squared_distances(self.embed(points), self.centroids).argmin(dim=1)

    def labels_for(self, images: torch.Tensor) -> torch.Tensor | None:
        """Cluster ids of real images in pixel space; ``None`` with D features (the GAN takes
        them from the features D computes anyway)."""
        return self.assign(images) if self.features == "pixels" else None

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: Any = None
    ) -> torch.Tensor:
        """``n`` cluster ids drawn with the clusters' frequencies (on the CPU with
        ``generator``, so a seed gives the same ids on every device)."""
        if generator is not None:
            ids = torch.multinomial(self.frequencies.cpu(), int(n), True, generator=generator)
            return ids.to(device or self.frequencies.device)
        return torch.multinomial(self.frequencies, int(n), True).to(
            device or self.frequencies.device
        )

    # ------------------------------------------------------------------ clustering
    def fit(
        self,
        images: torch.Tensor,
        extract: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[str, float]:
        """Cluster ``images`` (the fixed subset, in pixel range): on their pixels' PCA, or on
        ``extract(chunk)`` (D's features) for ``features=discriminator``. A re-clustering keeps
        the old ids' meaning (:func:`match_clusters`). Returns what to log."""
        seed = self.seed + int(self.fits)
        device = self.centroids.device
        if self.features == "pixels":
            points = images.flatten(1).float()
        else:
            if extract is None:
                raise RuntimeError("features=discriminator needs D's extract")
            points = torch.cat(
                [
                    extract(images[i : i + CHUNK]).detach().flatten(1).float()
                    for i in range(0, images.shape[0], CHUNK)
                ]  # fmt: skip
            )
        self.pca_mean, self.pca_basis = (t.to(device) for t in pca(points, self.dims, seed))
        generator = torch.Generator().manual_seed(seed)
        centers, ids = kmeans(self.embed(points).cpu(), self.clusters, generator, self.iterations)
        kept = 1.0
        if self.fitted and self.members.numel() == ids.numel():
            perm = match_clusters(self.members.cpu(), ids, self.clusters)
            centers, ids = centers[torch.argsort(perm)], perm[ids]
            kept = float((ids == self.members.cpu()).float().mean())
        counts = torch.bincount(ids, minlength=self.clusters).float()
        self.centroids = centers.to(device)
        self.frequencies = (counts / counts.sum()).to(device)
        self.members = ids.to(device)
        self.fits = self.fits + 1
        return {
            "self_conditioning/kept": kept,
            "self_conditioning/smallest_share": float(counts.min() / counts.sum()),
        }

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # Data-dependent shapes: take the saved ones before the copy (a fresh module has (k, 0)).
        for name in ("centroids", "pca_mean", "pca_basis", "members"):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"clusters={self.clusters}, features={self.features}, "
            f"recluster_every={self.recluster_every}"
        )
