"""gan_lightning/utils/streams.py: a seeded block repeats itself and leaves the process's own
random stream exactly where it was (an evaluation must not reset training's noise)."""

from __future__ import annotations

import torch

from gan_lightning.utils.streams import seeded_streams


def test_a_seeded_block_repeats_and_the_outer_stream_continues_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3), torch.rand(3)  # the stream as if no block ran in between

    torch.manual_seed(123)
    first = torch.rand(3)
    with seeded_streams(7):
        inside_a = torch.rand(4)
    with seeded_streams(7):
        inside_b = torch.rand(4)
    with seeded_streams(8):
        other = torch.rand(4)
    second = torch.rand(3)

    torch.testing.assert_close(inside_a, inside_b)  # same seed, same draws
    assert not torch.equal(inside_a, other)  # another seed, other draws
    torch.testing.assert_close(first, expected[0])
    torch.testing.assert_close(second, expected[1])  # the blocks took nothing from it
