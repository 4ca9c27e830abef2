"""gan_lightning/metrics/threads.py: one intra-op thread for small CPU workloads."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.metrics.threads import one_cpu_thread


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_one_thread_inside_and_the_previous_count_after(two_threads):
    with one_cpu_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError), one_cpu_thread():
        raise ValueError
    assert torch.get_num_threads() == 2


def test_disabled_leaves_the_count_alone(two_threads):
    with one_cpu_thread(enabled=False):
        assert torch.get_num_threads() == 2
