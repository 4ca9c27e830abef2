"""gan-generate as a user runs it: grids, folders, interpolation strips, seeds, bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gan_lightning.generate import main
from tests.helpers import TINY, tiny_checkpoint


@pytest.fixture(scope="module")
def ckpts(mnist_dir, tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "tiny_checkpoints"
    return {model: tiny_checkpoint(model, root, mnist_dir) for model in TINY}


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


@pytest.mark.parametrize("model", sorted(TINY))
def test_grid_png_of_the_expected_size(ckpts, model, tmp_path):
    out = tmp_path / "samples.png"
    assert main([f"ckpt={ckpts[model]}", "n=64", f"out={out}"]) == 0
    assert Image.open(out).size == (242, 242)  # 8x8 digits of 28 px, padding 2
    assert (
        main([f"ckpt={ckpts[model]}", "n=10", "nrow=5", "padding=0", f"out={tmp_path / 'r.png'}"])
        == 0
    )
    assert Image.open(tmp_path / "r.png").size == (5 * 28, 2 * 28)


def test_folder_of_n_images(ckpts, tmp_path):
    folder = tmp_path / "fake"
    assert (
        main([f"ckpt={ckpts['gan']}", "n=12", "format=folder", f"out={folder}", "batch_size=5"])
        == 0
    )
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(12)]
    assert all(Image.open(f).size == (28, 28) for f in files)


def test_seed_makes_it_reproducible_and_truncation_changes_it(ckpts, tmp_path):
    ckpt = ckpts["dcgan"]
    for name, args in {
        "a": ["seed=3"],
        "b": ["seed=3"],
        "c": ["seed=4"],
        "t": ["seed=3", "truncation=0.5"],
    }.items():
        assert main([f"ckpt={ckpt}", "n=4", f"out={tmp_path / name}.png", *args]) == 0
    a, b, c, t = (pixels(tmp_path / f"{n}.png") for n in "abct")
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, t)


def test_interpolation_strip(ckpts, tmp_path):
    out = tmp_path / "interp.png"
    assert (
        main([f"ckpt={ckpts['vae']}", "interpolate=true", "pairs=2", "steps=6", f"out={out}"]) == 0
    )
    assert Image.open(out).size == (6 * 30 + 2, 2 * 30 + 2)
    assert main([f"ckpt={ckpts['gan']}", "interpolate=true", "method=linear", f"out={out}"]) == 0
    assert Image.open(out).size == (10 * 30 + 2, 32)  # default: one strip of 10


def test_bad_input_is_one_clear_error(ckpts, tmp_path, capsys):
    assert main([f"ckpt={tmp_path / 'missing.ckpt'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["n=4"]) == 2
    assert "ckpt=<path to a .ckpt> is required" in capsys.readouterr().err
    assert main([f"ckpt={ckpts['gan']}", "colour=red"]) != 0
    assert "colour" in capsys.readouterr().err
    assert main([f"ckpt={ckpts['gan']}", "n=many"]) == 2
    assert "n" in capsys.readouterr().err
    assert main([f"ckpt={ckpts['gan']}", "format=zip"]) == 2
    assert "format='zip'" in capsys.readouterr().err
    assert main(["--n", "4"]) != 0
    assert main(["--help"]) == 0 and "format: grid" in capsys.readouterr().out


def test_module_entry_point(ckpts, tmp_path):
    out = tmp_path / "cli.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gan_lightning.generate",
            f"ckpt={ckpts['gan']}",
            "n=4",
            f"out={out}",
            "device=cpu",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(out).size == (62, 62) and "Wrote a grid of 4 samples" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.png"]  # no run dir, no log file
