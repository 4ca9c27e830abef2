"""One intra-op thread for small CPU workloads (classifier training, the scores' math).

Measured on the project's 2-core machine while other jobs ran: KID on 2000 x 128 features took
6.3 CPU-seconds with torch's default 2 threads and 0.3 with one; training the digit
classifier, 3x less wall time. Matrices this small gain little from a second thread, and
OpenMP threads spin while they wait for a core. GPU work is not affected.

Generating and extracting the scored images are batched network forwards like training's and
run with the run's own threads (2000 default-GAN samples through the digits extractor on an
idle 2-core machine: 99 ms with one thread, 67 ms with two); a shared machine sets
``num_threads=1`` for the whole run anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def one_cpu_thread(enabled: bool = True) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(1)``, restoring the previous count after."""
    threads = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if enabled:
            torch.set_num_threads(threads)
