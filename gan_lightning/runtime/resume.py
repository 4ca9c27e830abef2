"""``resume=auto``: find the run to continue, before Hydra creates a new run directory.

A run is continued *in its own directory* (same checkpoints/, samples/, W&B run), so the
directory must be chosen before Hydra makes a fresh timestamped one. :func:`resume_argv`
looks at the command line: with ``resume=auto`` and no ``hydra.run.dir``, it finds the newest
run of the same experiment (``logs/<task_name>/runs/*`` whose ``.hydra/overrides.yaml`` holds
the same overrides, ``resume`` aside) that has a ``checkpoints/last.ckpt``, and adds
``hydra.run.dir=<that run>``. :func:`resume_checkpoint` then picks the checkpoint inside the
run (``train.run``), and :func:`wandb_run_id` the W&B run to continue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.config_search import (
    compose_config,
    hydra_quote,
    override_key,
    parse_command_line,
)

RESUME_MODES = ("auto",)


#: Overrides that say how to continue, not what the experiment is.
NOT_THE_EXPERIMENT = ("resume", "trust")


def _comparable(overrides: list[str]) -> set[str]:
    """Overrides that define the experiment: ``resume``, ``trust`` and Hydra's own settings
    aside."""
    return {
        o
        for o in overrides
        if override_key(o) not in NOT_THE_EXPERIMENT and not override_key(o).startswith("hydra.")
    }


def find_previous_run(runs_dir: Path, overrides: list[str]) -> Path | None:
    """The newest run dir under ``runs_dir`` with the same overrides and a ``last.ckpt``."""
    wanted = _comparable(overrides)
    for run in sorted((p for p in runs_dir.glob("*") if p.is_dir()), reverse=True):
        saved = run / ".hydra" / "overrides.yaml"
        if not saved.is_file() or not (run / "checkpoints" / "last.ckpt").is_file():
            continue
        try:
            previous = yaml.safe_load(saved.read_text()) or []
        except yaml.YAMLError:
            continue
        if _comparable([str(o) for o in previous]) == wanted:
            return run
    return None


def resume_argv(argv: list[str], config_dir: str, config_name: str = "config") -> list[str]:
    """``argv`` plus ``hydra.run.dir=<previous run>`` when ``resume=auto`` asks for it.

    The command line is read by Hydra's own parser, and the run's config is composed with the
    user's config folders (``--config-dir``, ``hydra.searchpath``) and ``--config-name``, so an
    experiment of one's own resumes like a built-in one."""
    command = parse_command_line(argv)
    if command is None:
        return argv  # Hydra's parser refuses the command line; the app reports it
    overrides = command.overrides
    modes = [a.split("=", 1)[1] for a in overrides if override_key(a) == "resume"]
    if not modes or modes[-1] in ("null", "None", ""):
        return argv
    if modes[-1] not in RESUME_MODES:
        raise ConfigError(
            f"resume={modes[-1]} is not known; use resume=auto (or ckpt_path=<file>)."
        )
    if command.multirun:
        raise ConfigError("resume=auto continues one run; it cannot be used with -m (multirun).")
    if any(override_key(a) == "hydra.run.dir" for a in overrides):
        return argv  # the user named the run directory: continue in it
    cfg = compose_config(
        config_dir, command.config_name or config_name, overrides, command.search_path
    )
    runs_dir = Path(str(cfg.paths.log_dir)) / str(cfg.task_name) / "runs"
    previous = find_previous_run(runs_dir, overrides)
    # Printed, not logged: Hydra has not set up logging yet.
    if previous is None:
        print(f"resume=auto: no earlier run of this experiment in {runs_dir}; starting a new one.")
        return argv
    print(f"resume=auto: continuing the run in {previous}")
    return [*argv, f"hydra.run.dir={hydra_quote(str(previous))}"]


def resume_checkpoint(cfg: Any) -> str | None:
    """The checkpoint to continue from: ``ckpt_path``, or ``last.ckpt`` of this run dir with
    ``resume=auto`` (``None``: a fresh start)."""
    mode = cfg.get("resume")
    if cfg.get("ckpt_path"):
        if mode:
            raise ConfigError("set either resume=auto or ckpt_path=<file>, not both.")
        path = Path(str(cfg.ckpt_path))
        if not path.is_file():
            raise ConfigError(
                f"ckpt_path={path} does not exist; pass a .ckpt of a previous run, e.g. "
                "ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt"
            )
        return str(path)
    if not mode:
        return None
    if mode not in RESUME_MODES:
        raise ConfigError(f"resume={mode} is not known; use resume=auto (or ckpt_path=<file>).")
    last = Path(str(cfg.paths.output_dir)) / "checkpoints" / "last.ckpt"
    return str(last) if last.is_file() else None


def wandb_run_id(checkpoint: dict[str, Any]) -> str | None:
    """The W&B run a checkpoint was logging to (saved by the module), to continue it."""
    from gan_lightning.modules.base import CHECKPOINT_KEY

    run_id = (checkpoint.get(CHECKPOINT_KEY) or {}).get("wandb_run_id")
    return str(run_id) if run_id else None
