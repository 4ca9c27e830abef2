"""Eval mode for a block of code, with every net's previous mode restored afterwards.

Sampling, reconstructions, pictures of D(x) and classifier accuracy all need BatchNorm's running
statistics and no dropout, but they run in the middle of training: the nets must come back in
the mode they were in (train mode during fit, eval mode in the CLIs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(*nets: nn.Module) -> Iterator[None]:
    """Put ``nets`` in eval mode for the block; restore each one's own mode after it."""
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for net, mode in zip(nets, modes, strict=True):
            net.train(mode)
