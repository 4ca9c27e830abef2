"""DDP inside a Hydra multirun: ranks > 0 re-run *this job*, in *its* run dir.

Lightning's ``ddp`` strategy starts ranks 1..N-1 by executing the script again (its subprocess
launcher): the command line of the current process plus ``hydra.run.dir=<hydra.run.dir>``,
with ``LOCAL_RANK``/``WORLD_SIZE``/``MASTER_PORT`` in the environment. That is right for a
single run and wrong inside a multirun:

* with Hydra's basic launcher the command line is the whole ``-m`` sweep, so rank 1 runs every
  job of the sweep again (and pairs up with rank 0 only by luck), and ``hydra.run.dir`` is a
  fresh ``runs/<time>`` directory instead of the job's;
* with the joblib launcher the process is a loky worker, whose command line is loky's own
  (rank 1 dies with ``--pipe is required``);
* after a DDP job, the launcher's environment variables and the default process group are
  left behind in the process, so the next job of the sweep believes an outside launcher
  already started its ranks (no children, a hang) or reuses the dead group.

:func:`ddp_job` fixes the three around ``trainer.fit``: inside a multirun job it hands
Lightning's launcher :func:`job_command` (``train.py`` + this job's config name, config dirs
and resolved overrides, ``hydra.mode=RUN``, ``hydra.run.dir=<job dir>``,
``hydra.output_subdir=null``), and when the job ends it waits for (or, after a failure, stops)
the job's ranks, destroys the process group and restores the environment. Single runs keep
Lightning's own command, which is right for them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from gan_lightning.runtime.cli import CONFIG_DIR, checkout_root
from gan_lightning.runtime.compat import ddp_child_command, ddp_child_processes
from gan_lightning.runtime.config_search import hydra_quote, override_key

log = logging.getLogger(__name__)

#: What Lightning's subprocess launcher writes into ``os.environ`` for its children (and
#: ``OMP_NUM_THREADS``, set once per process for DDP on CPU). Left behind, ``LOCAL_RANK``
#: makes the next job's Trainer think ``torchrun`` already started its ranks.
LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
THREAD_ENV = ("OMP_NUM_THREADS",)
#: Hydra keys :func:`job_command` sets itself (any earlier value of them is dropped).
RELAUNCH_KEYS = ("hydra.mode", "hydra.run.dir", "hydra.output_subdir", "hydra.job.name")
#: How long a finished job waits for its other ranks to exit (they only tear down by then).
RANK_EXIT_TIMEOUT_S = 120.0


def in_multirun_job() -> bool:
    """Whether this process is running one job of a Hydra multirun (any launcher)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def entry_point() -> list[str]:
    """How to start ``gan_lightning.train`` with the same package this process imported: the
    checkout's ``train.py`` when it runs from one (its directory goes first on ``sys.path``,
    from any working directory), else the installed module."""
    root = checkout_root()
    if root is not None:
        return [sys.executable, str(root / "train.py")]
    return [sys.executable, "-m", "gan_lightning.train"]


def job_command(local_rank: int) -> tuple[list[str], str]:
    """The command (and working directory) that starts rank ``local_rank`` of the current
    multirun job: the same config, in RUN mode, in the job's own run directory.

    The job is rebuilt from what Hydra recorded for it, never from ``sys.argv`` (the sweep's
    command line, or loky's): config name and command-line config dirs, the Hydra overrides
    and the job's resolved task overrides (the sweep's values for this job, Optuna's trial
    parameters). ``hydra.output_subdir=null`` keeps rank 0's ``.hydra/`` untouched; the log
    goes to ``<job dir>/train_ddp_process_<rank>.log`` like in a single DDP run.
    """
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    command = [*entry_point(), f"--config-name={hc.job.config_name}"]
    for source in hc.runtime.config_sources:
        if source.schema != "file":
            continue
        if source.provider == "command-line":  # --config-dir
            command.append(f"--config-dir={source.path}")
        elif source.provider == "main" and os.path.abspath(source.path) != CONFIG_DIR:
            command.append(f"--config-path={source.path}")  # --config-path
    command += [o for o in hc.overrides.hydra if override_key(o) not in RELAUNCH_KEYS]
    command += list(hc.overrides.task)
    command += [
        "hydra.mode=RUN",
        f"hydra.run.dir={hydra_quote(hc.runtime.output_dir)}",
        "hydra.output_subdir=null",
        f"hydra.job.name=train_ddp_process_{local_rank}",
    ]
    return command, hc.runtime.cwd


def _wait_or_stop(children: list[subprocess.Popen], failed: bool) -> None:
    """Wait for the job's other ranks to exit; after a failure, stop them instead (they would
    otherwise wait in a collective for rank 0 until the process group times out)."""
    for child in children:
        if failed and child.poll() is None:
            child.send_signal(signal.SIGKILL)
        try:
            child.wait(timeout=RANK_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("DDP rank process %d is still running after the job ended.", child.pid)


def clear_process_group() -> None:
    """Destroy the default process group, so the next job in this process starts a new one
    (Lightning only destroys it when the process exits)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


@contextmanager
def ddp_job(trainer: Any) -> Iterator[None]:
    """Around ``trainer.fit`` of one job: DDP ranks > 0 of a multirun job run this job (see the
    module doc), and nothing of the job's DDP state outlives it in this process."""
    env_before = {name: os.environ.get(name) for name in (*LAUNCHER_ENV, *THREAD_ENV)}
    threads_before = torch.get_num_threads()
    failed = True
    try:
        if in_multirun_job():
            with ddp_child_command(job_command):
                yield
        else:
            yield
        failed = False
    finally:
        _wait_or_stop(ddp_child_processes(trainer), failed)
        clear_process_group()
        for name, value in env_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(threads_before)
