"""gan_lightning/data/loaders.py: the training order, resumable in the middle of an epoch."""

from __future__ import annotations

import torch

from gan_lightning.data.loaders import ResumableDataLoader, ResumableSampler, passthrough_collate
from gan_lightning.data.tensors import TensorImageDataset


def dataset(n: int = 12) -> TensorImageDataset:
    return TensorImageDataset(torch.arange(n).view(n, 1, 1, 1).float(), torch.arange(n))


def order(sampler: ResumableSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_the_order_is_a_shuffle_fixed_by_seed_and_epoch():
    first, again = ResumableSampler(dataset(), seed=3), ResumableSampler(dataset(), seed=3)
    assert order(first, 0) == order(again, 0) and sorted(order(first, 0)) == list(range(12))
    assert order(first, 0) != order(first, 1)  # a new shuffle every epoch
    assert order(ResumableSampler(dataset(), seed=4), 0) != order(first, 0)


def test_a_resumed_epoch_starts_at_the_next_sample_once():
    sampler = ResumableSampler(dataset(), seed=3)
    full = order(sampler, 2)
    sampler.resume_at(2, 5)
    assert order(sampler, 2) == full[5:]
    assert order(sampler, 2) == full  # the next pass is whole again


def test_the_loader_saves_the_batches_processed_and_resumes_after_them():
    loader = ResumableDataLoader(
        dataset(),
        batch_size=4,
        sampler=ResumableSampler(dataset(), seed=0),
        collate_fn=passthrough_collate,
    )
    loader.sampler.set_epoch(1)
    batches = [labels.tolist() for _, labels in loader]
    loader.position_fn = lambda: 1  # the training loop has processed one batch of epoch 1
    state = loader.state_dict()
    assert state == {"epoch": 1, "batches": 1}
    loader.load_state_dict(state)
    assert [labels.tolist() for _, labels in loader] == batches[1:]
