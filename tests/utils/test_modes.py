"""gan_lightning/utils/modes.py: eval mode for a block, each net's own mode restored."""

from __future__ import annotations

import pytest
from torch import nn

from gan_lightning.utils.modes import eval_mode


def test_each_net_gets_its_own_mode_back():
    training, evaluating = nn.BatchNorm1d(3), nn.Dropout().eval()
    with eval_mode(training, evaluating):
        assert not training.training and not evaluating.training
    assert training.training and not evaluating.training


def test_modes_are_restored_when_the_block_fails():
    net = nn.Linear(2, 2)
    with pytest.raises(RuntimeError), eval_mode(net):
        raise RuntimeError("boom")
    assert net.training
