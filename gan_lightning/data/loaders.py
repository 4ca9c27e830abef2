"""The training order and its loader: shuffled by seed and epoch, split across DDP ranks, and
resumable in the middle of an epoch (Lightning checkpoints the loader's position)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """The training order: shuffled by ``seed + epoch`` (the same in every run, and after a
    resume), split across DDP ranks, and able to start an epoch in the middle.

    A ``DistributedSampler`` with one replica when there is no process group, so Lightning
    keeps it as it is under DDP instead of wrapping it.
    """

    def __init__(self, dataset: Dataset, seed: int = 0, shuffle: bool = True) -> None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        super().__init__(
            dataset,
            num_replicas=torch.distributed.get_world_size() if distributed else 1,
            rank=torch.distributed.get_rank() if distributed else 0,
            shuffle=shuffle,
            seed=int(seed),
        )
        self._resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, skip: int) -> None:
        """Start ``epoch`` at its ``skip``-th sample of this rank (once)."""
        self._resume = (int(epoch), int(skip))

    def __iter__(self):
        indices = list(super().__iter__())
        if self._resume is not None and self._resume[0] == self.epoch:
            indices = indices[self._resume[1] :]
        self._resume = None
        return iter(indices)


class ResumableDataLoader(DataLoader):
    """A training DataLoader that Lightning checkpoints mid-epoch (the ``state_dict`` /
    ``load_state_dict`` protocol it looks for), so a resumed run continues with the next batch
    instead of the start of the epoch.

    The position saved is how many batches the training loop has *processed* this epoch
    (``position_fn``, from the Trainer), not how many this loader has yielded: Lightning
    fetches one batch ahead.
    """

    position_fn: Any = None

    def state_dict(self) -> dict[str, int]:
        position = int(self.position_fn()) if self.position_fn is not None else 0
        return {"epoch": int(self.sampler.epoch), "batches": position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume_at(state["epoch"], state["batches"] * int(self.batch_size))


def passthrough_collate(batch: Any) -> Any:
    """Collate for datasets whose ``__getitems__`` already returns a stacked batch."""
    return batch
