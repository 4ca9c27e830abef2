"""Where the images that get scored come from: a seeded subset of a real split, and a seeded
set of latents pushed through the model's generator. Both are split across ranks with
:func:`~gan_lightning.metrics.scores.shard`, so every rank scores its own contiguous share
and the union is exactly the single-process set (no DistributedSampler padding).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from gan_lightning.contracts import conditions_of
from gan_lightning.errors import ConfigError
from gan_lightning.metrics.scores import shard
from gan_lightning.utils.streams import seeded_streams

SPLITS = ("train", "val", "test")


def split_dataset(datamodule: Any, split: str) -> Any:
    """The ``train``/``val``/``test`` dataset of a project DataModule (set up if needed)."""
    if split not in SPLITS:
        raise ConfigError(f"metrics.split={split!r} is not known; choose one of {list(SPLITS)}.")
    dataset = getattr(datamodule, f"{split}_set", None)
    if dataset is None and hasattr(datamodule, "setup"):
        datamodule.setup("test" if split == "test" else "fit")
        dataset = getattr(datamodule, f"{split}_set", None)
    if dataset is None:
        raise ConfigError(
            f"metrics.split={split}: the DataModule {type(datamodule).__name__} has no {split} set; "
            f"choose another of {list(SPLITS)}."
        )
    return dataset


def real_indices(dataset_size: int, num: int, seed: int) -> torch.Tensor:
    """``num`` indices of a split (all of it when ``num >= size``), a seeded random subset in
    index order otherwise: the same images every evaluation and in every process."""
    if num >= dataset_size:
        return torch.arange(dataset_size)
    order = torch.randperm(dataset_size, generator=torch.Generator().manual_seed(int(seed)))
    return order[:num].sort().values


def real_batches(
    datamodule: Any, split: str, num: int, seed: int, rank: int = 0, world_size: int = 1
) -> tuple[Iterator[Any], int]:
    """This rank's share of the real images, as batches of uint8 (or pixel-range) images
    (``(images, labels)`` pairs when the DataModule has ``num_classes``), and the total number
    of real images over all ranks."""
    dataset = split_dataset(datamodule, split)
    indices = real_indices(len(dataset), int(num), seed)
    mine = indices[shard(len(indices), rank, world_size)].tolist()
    subset = Subset(dataset, mine)
    if hasattr(datamodule, "loader"):  # BaseDataModule: its collate, workers and eval batch size
        loader = datamodule.loader(subset, train=False)
    else:
        loader = DataLoader(subset, batch_size=256, shuffle=False)

    labelled = bool(getattr(datamodule, "num_classes", 0))

    def images() -> Iterator[Any]:
        # A DataLoader's iterator draws its workers' base seed from the global generator:
        # drawn here under a fixed seed, the training's random streams stay untouched.
        with seeded_streams(seed):
            batches = iter(loader)
        for batch in batches:
            if not isinstance(batch, (tuple, list)):
                yield batch
            else:  # labels only where the data have classes (the real side of intra-class FID)
                yield (batch[0], batch[1]) if labelled and len(batch) > 1 else batch[0]

    return images(), len(indices)


def generated_batches(
    module: Any, num: int, seed: int, batch_size: int, rank: int = 0, world_size: int = 1
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """This rank's share of ``num`` generated images, in ``module.pixel_range``, with the class
    each was asked for (``None`` for an unconditional model).

    All ``num`` latents (then, for a conditional model, uniformly drawn labels) come from one
    seeded CPU generator, and each rank decodes its slice: the same seed gives the same images
    whatever the device or world size.
    """
    generator = torch.Generator().manual_seed(int(seed))
    z = module.sample_latent(int(num), generator, device="cpu")
    conditional = bool(conditions_of(module))  # classes, or a self-conditioned GAN's clusters
    labels = module.sample_labels(int(num), generator, device="cpu") if conditional else None
    mine = shard(int(num), rank, world_size)
    z = z[mine]
    labels = labels[mine] if labels is not None else None
    for start in range(0, z.shape[0], int(batch_size)):
        part = slice(start, start + int(batch_size))
        if labels is None:
            yield module.generate(z[part]), None
        else:
            yield module.generate(z[part], labels[part]), labels[part]
