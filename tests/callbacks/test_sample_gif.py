"""SampleGif: frames in epoch order, labels, sizes, thinning, nothing to do without grids."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from gan_lightning.callbacks import SampleGif
from gan_lightning.callbacks.base import frames, picture_path
from gan_lightning.callbacks.sample_gif import thin
from gan_lightning.errors import ConfigError

GRID = 8 * 28 + 9 * 2  # an 8x8 grid of 28x28 digits with padding 2: 242


def write_grids(folder: Path, epochs: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for epoch in epochs:
        shade = (epoch * 40) % 256
        Image.new("RGB", (GRID, GRID), (shade, shade, shade)).save(
            picture_path(folder, epoch=epoch, step=(epoch + 1) * 100)
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
    gif = frames_of(tmp_path / "all.gif")
    assert len(gif) == 3
    assert gif[0].size == (GRID, GRID + 16)  # the grid plus a 16-pixel "epoch N" strip
    shades = [f.getpixel((GRID // 2, 16 + GRID // 2))[0] for f in gif]
    assert shades == [0, 40, 80]  # epoch order
    assert max(gif[0].crop((0, 0, 60, 16)).convert("L").getdata()) > 128  # label drawn


def test_epochs_sort_numerically_not_by_name(tmp_path: Path):
    write_grids(tmp_path, [999, 1000, 2])
    assert [epoch for epoch, _ in frames(tmp_path)] == [2, 999, 1000]
    assert picture_path(tmp_path, epoch=4, step=4295).name == "epoch_004_step_0004295.png"
    assert picture_path(tmp_path, step=100).name == "step_0000100.png"
    assert picture_path(tmp_path, epoch=0, tag="linear").name == "epoch_000_linear.png"


def test_long_runs_are_thinned_keeping_first_and_last(tmp_path: Path):
    assert thin(list(range(10)), 4) == [0, 3, 6, 9]
    assert thin([1, 2], 5) == [1, 2]
    write_grids(tmp_path / "s", list(range(7)))
    callback = SampleGif(
        samples_dir=str(tmp_path / "s"), path=str(tmp_path / "a.gif"), max_frames=3, label_height=0
    )
    callback.write()
    gif = frames_of(tmp_path / "a.gif")
    assert len(gif) == 3 and gif[0].size == (GRID, GRID)
    assert [f.getpixel((1, 1))[0] for f in gif] == [0, 120, 240]  # epochs 0, 3, 6


def test_no_grids_no_gif(tmp_path: Path, caplog):
    callback = SampleGif(samples_dir=str(tmp_path / "missing"), path=str(tmp_path / "a.gif"))
    assert callback.write() is None and not (tmp_path / "a.gif").exists()
    assert "No sample grids" in caplog.text
    with pytest.raises(ConfigError):
        SampleGif(frame_ms=0)
