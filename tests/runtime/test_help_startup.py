"""``python train.py --help`` answers without importing torch, Lightning or W&B (seconds
instead of the ~5 s those imports take), with the same screen as the full app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import runpy, sys
sys.argv = ["train.py", "--help"]
try:
    runpy.run_path("train.py", run_name="__main__")
except SystemExit as done:
    assert not done.code, done.code
print("IMPORTED", sorted(m for m in ("torch", "pytorch_lightning", "wandb") if m in sys.modules))
"""


def test_help_needs_neither_torch_nor_lightning(capsys):
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    screen, _, imported = out.stdout.rpartition("IMPORTED ")
    assert imported.strip() == "[]"
    from gan_lightning.train import main

    assert main(["--help"]) == 0
    assert capsys.readouterr().out == screen  # the full app's own help screen
