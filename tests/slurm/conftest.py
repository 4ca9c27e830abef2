"""A real Slurm cluster for the tests of ``hydra/launcher=slurm`` (``make test-slurm``).

``scripts/slurm_local.sh start`` brings up munged, slurmctld and two slurmd on 127.0.0.1 once
per session; the fixture always stops them again, and a cluster that does not come up fails
the tests with the script's own explanation: skipping would hide a broken CI machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "slurm_local.sh"
START_TIMEOUT_S = 120


def _script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )


@pytest.fixture(scope="session")
def slurm_env(mnist_dir: Path) -> Iterator[dict[str, str]]:
    """The environment a test submits with: ``SLURM_CONF`` of the local cluster, the repo on
    ``PYTHONPATH`` (the jobs import ``tests.slurm.probe``), MNIST, offline W&B."""
    env = {**os.environ}
    try:
        try:
            started = _script("start", env)
        except subprocess.TimeoutExpired as err:
            pytest.fail(f"scripts/slurm_local.sh start took over {START_TIMEOUT_S}s:\n{err.output}")
        if started.returncode != 0:
            pytest.fail(
                "The local Slurm cluster did not start (scripts/slurm_local.sh start, exit "
                f"{started.returncode}):\n{started.stdout}\n{started.stderr}",
                pytrace=False,
            )
        exports = [line for line in started.stdout.splitlines() if line.startswith("export ")]
        for line in exports:
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        assert "SLURM_CONF" in env and Path(env["SLURM_CONF"]).is_file(), started.stdout
        env.update(
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
            GAN_LIGHTNING_DATA_DIR=str(mnist_dir),
            WANDB_MODE="offline",
        )
        yield env
    finally:
        stopped = _script("stop", env)
        sys.stderr.write(stopped.stdout + stopped.stderr)
