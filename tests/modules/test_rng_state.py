"""Random states in checkpoints are per rank: each DDP rank restores its own CPU and CUDA
generator (CUDA: the current device's only, so a checkpoint resumes with fewer visible GPUs),
and a rank the checkpoint has no state for keeps its own fresh stream."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.modules.base import capture_rng, own_state, restore_rng


def states_of(*seeds: int) -> torch.Tensor:
    rows = []
    for seed in seeds:
        torch.manual_seed(seed)
        rows.append(torch.get_rng_state())
    return torch.stack(rows)


def draw_after(state: torch.Tensor) -> torch.Tensor:
    torch.set_rng_state(state.clone())  # a row view of a stack would crash set_rng_state
    return torch.randn(3)


def test_each_rank_restores_its_own_cpu_stream():
    saved = {**capture_rng(), "torch": states_of(1, 2)}  # as written by 2 processes
    for rank in (0, 1):
        restore_rng(saved, rank)
        assert torch.equal(torch.randn(3), draw_after(saved["torch"][rank]))


def test_a_rank_without_a_saved_state_keeps_its_own_stream():
    saved = {**capture_rng(), "torch": states_of(1, 2)}
    torch.manual_seed(99)
    mine = torch.get_rng_state()
    restore_rng(saved, rank=2)  # resumed on 3 processes: rank 2 was never saved
    assert torch.equal(torch.randn(3), draw_after(mine))
    single = {**capture_rng(), "torch": states_of(7)[0]}  # written by one process
    torch.manual_seed(99)
    restore_rng(single, rank=1)
    assert torch.equal(torch.randn(3), draw_after(mine))  # not a copy of rank 0's


def test_a_cpu_run_saves_no_cuda_state():
    assert capture_rng()["cuda"] == []


@pytest.mark.parametrize(
    ("saved", "rank", "expected"),
    [
        (torch.arange(6, dtype=torch.uint8).view(2, 3), 1, [3, 4, 5]),  # per rank (DDP)
        (torch.arange(3, dtype=torch.uint8), 0, [0, 1, 2]),  # one process
        (torch.arange(3, dtype=torch.uint8), 1, None),
        ([torch.zeros(2, dtype=torch.uint8)], 1, None),  # old per-device list, 1 GPU seen
        ([], 0, None),
    ],
)
def test_own_state_picks_this_ranks_row_or_none(saved, rank, expected):
    row = own_state(saved, rank)
    assert (row is None) if expected is None else row.tolist() == expected


def test_cuda_state_goes_to_the_current_device_only(monkeypatch):
    """A checkpoint of 2 GPU ranks resumed where fewer GPUs are visible: no IndexError from
    set_rng_state_all, each rank sets its own row on its own (current) device."""
    set_rows = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state: set_rows.append(state))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: pytest.fail("all"))
    cuda = torch.arange(8, dtype=torch.uint8).view(2, 4)
    saved = {**capture_rng(), "cuda": cuda}
    restore_rng(saved, rank=1)
    assert len(set_rows) == 1 and torch.equal(set_rows[0], cuda[1])
