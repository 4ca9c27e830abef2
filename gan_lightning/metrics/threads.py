"""One intra-op thread for small CPU workloads (classifier training, scoring).

Measured on the project's 2-core machine while other jobs ran: KID on 2000 x 128 features took
6.3 CPU-seconds with torch's default 2 threads and 0.3 with one; training the digit
classifier, 3x less wall time. Matrices this small gain little from a second thread, and
OpenMP threads spin while they wait for a core. GPU work is not affected.
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
