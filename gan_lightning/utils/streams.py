"""Seeded blocks that leave every random stream of the process where it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded_streams(seed: int) -> Iterator[None]:
    """Run the block with the CPU generator (and the current CUDA device's, once CUDA is in
    use) seeded with ``seed``; afterwards every stream continues exactly where it was.

    Why not ``fork_rng(devices=[])`` + ``torch.manual_seed``: ``manual_seed`` also reseeds
    every CUDA generator, which ``devices=[]`` does not restore, so after each evaluation all
    GPU noise (z, noisy labels, DiffAugment, dropout) restarted from ``seed``, alike on every
    DDP rank. Here only the generators that are forked are seeded, and all are restored."""
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = [torch.cuda.current_device()] if cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(int(seed))
        if cuda:
            torch.cuda.manual_seed(int(seed))  # the current device's generator only
        yield
