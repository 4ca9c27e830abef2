"""scripts/gpu_check.sh --dry-run: every part of the GPU check runs on the CPU at tiny sizes,
so the script works the day a GPU is lent (issue 17)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_the_gpu_check_dry_run_passes_every_part():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    for part in range(1, 10):
        assert f"== {part}. " in out, f"part {part} missing:\n{out[-4000:]}"
    assert "[FAIL]" not in out and " 0 failed" in out, out[-4000:]
    assert "32-true:" in out and "bf16-mixed:" in out and "images/s" in out
    assert "16-mixed is refused for GANs in one line naming bf16-mixed" in out
