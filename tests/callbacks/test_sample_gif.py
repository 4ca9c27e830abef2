"""SampleGif: frames in epoch order, labels, sizes, thinning, nothing to do without grids."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from gan_lightning.callbacks import SampleGif
from gan_lightning.callbacks.sample_gif import grid_frames, thin
from gan_lightning.errors import ConfigError

GRID = 8 * 28 + 9 * 2  # an 8x8 grid of 28x28 digits with padding 2: 242


def write_grids(folder: Path, epochs: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for epoch in epochs:
        shade = (epoch * 40) % 256
        Image.new("RGB", (GRID, GRID), (shade, shade, shade)).save(
            folder / f"epoch_{epoch:03d}_step_{(epoch + 1) * 100:07d}.png"
        )


def frames_of(path: Path) -> list[Image.Image]:
    gif = Image.open(path)
    frames = []
    for index in range(gif.n_frames):
        gif.seek(index)
        frames.append(gif.convert("RGB").copy())
    return frames


def test_gif_has_one_labelled_frame_per_epoch_in_order(tmp_path: Path):
    write_grids(tmp_path / "samples", [0, 1, 2])
    Image.new("RGB", (5, 5)).save(tmp_path / "samples" / "unrelated.png")
    callback = SampleGif(samples_dir=str(tmp_path / "samples"), path=str(tmp_path / "all.gif"))
    callback.on_train_end(None, None)
    frames = frames_of(tmp_path / "all.gif")
    assert len(frames) == 3
    assert frames[0].size == (GRID, GRID + 16)  # the grid plus a 16-pixel "epoch N" strip
    shades = [f.getpixel((GRID // 2, 16 + GRID // 2))[0] for f in frames]
    assert shades == [0, 40, 80]  # epoch order
    assert max(frames[0].crop((0, 0, 60, 16)).convert("L").getdata()) > 128  # label drawn


def test_epochs_sort_numerically_not_by_name(tmp_path: Path):
    write_grids(tmp_path, [999, 1000, 2])
    assert [epoch for epoch, _ in grid_frames(tmp_path)] == [2, 999, 1000]


def test_long_runs_are_thinned_keeping_first_and_last(tmp_path: Path):
    assert thin(list(range(10)), 4) == [0, 3, 6, 9]
    assert thin([1, 2], 5) == [1, 2]
    write_grids(tmp_path / "s", list(range(7)))
    callback = SampleGif(
        samples_dir=str(tmp_path / "s"), path=str(tmp_path / "a.gif"), max_frames=3, label_height=0
    )
    callback.write()
    frames = frames_of(tmp_path / "a.gif")
    assert len(frames) == 3 and frames[0].size == (GRID, GRID)
    assert [f.getpixel((1, 1))[0] for f in frames] == [0, 120, 240]  # epochs 0, 3, 6


def test_no_grids_no_gif(tmp_path: Path, caplog):
    callback = SampleGif(samples_dir=str(tmp_path / "missing"), path=str(tmp_path / "a.gif"))
    assert callback.write() is None and not (tmp_path / "a.gif").exists()
    assert "No sample grids" in caplog.text
    with pytest.raises(ConfigError):
        SampleGif(frame_ms=0)
