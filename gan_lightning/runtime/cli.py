"""One command-line style for every entry point: Hydra ``key=value`` overrides.

``train.py`` / ``gan-train``, ``gan-generate``, ``gan-evaluate`` and
``python -m gan_lightning.metrics.train_classifier`` are all Hydra apps on a config in
``conf/`` (``config.yaml``, ``generate.yaml``, ``evaluate.yaml``, ``train_classifier.yaml``),
so they share:

* ``key=value`` arguments checked against the config (a typo is an error, not ignored);
* ``--help`` (usage, config groups and the composed config) and ``--cfg job``;
* ``group=null`` to switch a config group off (Hydra 1.3 itself rejects it);
* errors a user can fix (:class:`~gan_lightning.errors.ConfigError`,
  :class:`~gan_lightning.errors.DataSourceError`) as one ``Error: ...`` line and exit code 2,
  never a traceback;
* faults of the machine (:class:`~gan_lightning.errors.FileSystemError`, and any ``OSError``
  of a full, read-only or missing path, :mod:`gan_lightning.runtime.filesystem`) the same
  way: one line naming the path, what was being done and the fix; exit code 2, or
  :data:`~gan_lightning.runtime.filesystem.STORAGE_STOP_EXIT` for a training run stopped by
  one. The run directory Hydra is about to create is checked before Hydra starts.

The helpers every CLI needs (the error filter, the device choice) live here, once.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from gan_lightning.errors import ConfigError, DataSourceError, FileSystemError, NonFiniteError
from gan_lightning.runtime.compat import clear_hydra_state
from gan_lightning.runtime.filesystem import check_writable_dir, from_os_error, is_file_system_fault

log = logging.getLogger(__name__)

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")
#: The exit code of a run stopped by a user error (Hydra's own errors exit with 1).
USER_ERROR_EXIT = 2


def user_error(err: BaseException | None, doing: str = "Running") -> BaseException | None:
    """The :class:`ConfigError`/:class:`DataSourceError`/:class:`NonFiniteError`/
    :class:`FileSystemError` behind ``err``, if any (Hydra wraps errors raised in ``__init__``
    of instantiated classes); an ``OSError`` of a file-system fault (a full or read-only disk,
    a folder that is a file) becomes a :class:`FileSystemError` naming its path."""
    while err is not None:
        if isinstance(err, (ConfigError, DataSourceError, NonFiniteError, FileSystemError)):
            return err
        if is_file_system_fault(err):
            return from_os_error(err, doing)  # type: ignore[arg-type]
        err = err.__cause__ or (
            err.__context__ if isinstance(err, InstantiationException) else None
        )
    return None


def print_error(err: BaseException) -> int:
    """Print ``err`` as the one ``Error:`` line; its exit code (2 unless it carries one)."""
    print(f"\nError: {err}", file=sys.stderr)
    return int(getattr(err, "exit_code", USER_ERROR_EXIT))


def report_user_errors(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Run ``task``; a user error or a file-system fault becomes one ``Error:`` line on stderr
    and its exit code (2, or the one a :class:`FileSystemError` carries)."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except Exception as err:  # noqa: BLE001 - only user errors are reformatted
            user = user_error(err, f"Running {task.__module__.rsplit('.', 1)[-1]}: accessing")
            if user is None:
                raise
            log.error("Stopped by a %s (message below).", type(user).__name__)
            sys.exit(print_error(user))

    return wrapped


def null_group_overrides(argv: list[str]) -> list[str]:
    """``logger=null`` -> ``logger=none`` for every group that has a ``none.yaml``.

    Hydra 1.3 rejects ``group=null`` on the command line ("Config group override must be a
    string"), yet it is what users type to switch a group off; ``none.yaml`` is that option.
    """
    groups = {p.parent.name for p in Path(CONFIG_DIR).glob("*/none.yaml")}
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and value in ("null", "None") and key.lstrip("+") in groups:
            arg = f"{key.lstrip('+')}=none"
        out.append(arg)
    return out


def hydra_quote(value: str) -> str:
    """``value`` as one quoted Hydra override value, so a path with ``=``, ``,``, spaces or
    brackets reaches the config unchanged (``hydra.run.dir='/a b/c=1'``)."""
    # Hydra reads a backslash literally except before a quote or at the end of the value.
    escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, str(value))
    return "'" + escaped.replace("'", "\\'") + "'"


def hydra_cli(
    config_name: str, prepare_argv: Callable[[list[str]], list[str]] | None = None
) -> Callable[[Callable[[DictConfig], Any]], Callable[..., int]]:
    """Turn ``task(cfg)`` into a console-script ``main(argv=None) -> exit code``: a Hydra app
    on ``conf/<config_name>.yaml`` with the project's error handling and ``group=null``.

    ``main()`` reads ``sys.argv`` like any console script; ``main(["key=value", ...])`` runs
    the same app on those arguments (tests, notebooks) and returns its exit code.
    ``prepare_argv`` may rewrite the arguments before Hydra sees them (``resume=auto`` picks
    the run directory that way); its user errors are reported like the task's.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[..., int]:
        app = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(
            report_user_errors(task)
        )

        @functools.wraps(task)
        def main(argv: list[str] | None = None) -> int:
            args = null_group_overrides(sys.argv[1:] if argv is None else list(argv))
            try:
                if prepare_argv is not None:
                    args = prepare_argv(args)
                check_composition(config_name, args)
            except (ConfigError, DataSourceError, FileSystemError) as err:
                return print_error(err)
            sys.argv = [sys.argv[0], *args]
            try:
                app()
            except SystemExit as done:  # --help, Hydra's own errors, report_user_errors
                return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            finally:
                forget_hydra_run()
            return 0

        return main

    return decorate


def check_composition(config_name: str, args: list[str]) -> None:
    """Compose the config the way Hydra is about to, and turn its errors (a key that does not
    exist, an unknown group option, a malformed override) into one-line :class:`ConfigError`
    messages instead of Hydra's own report and exit code 1; then check that the run directory
    Hydra will create (and write its ``.hydra/`` and log file into) can be written
    (:func:`check_run_dir`). Multiruns are left to Hydra (each job's config is checked when
    it runs)."""
    if any(a in ("-m", "--multirun") or a.startswith("-") for a in args):
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = [a for a in args if not a.lstrip("+~").startswith("hydra.")]
    errors = (HydraException, OmegaConfBaseException, ValueError)
    with_hydra, run_dir = None, None
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            compose(config_name=config_name, overrides=overrides)
            try:  # Hydra's own settings: where the run directory will be
                with_hydra = compose(
                    config_name=config_name, overrides=args, return_hydra_config=True
                )
                run_dir = OmegaConf.select(with_hydra, "hydra.run.dir", default=None)
            except errors:
                pass  # a Hydra setting compose cannot take: Hydra itself reports it
    except errors as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        hint = next((line for line in lines if line.startswith(("To append", "Available"))), "")
        message = " ".join([lines[0] if lines else type(err).__name__, hint]).strip()
        raise ConfigError(message) from err
    finally:
        clear_hydra_state()
    if with_hydra is not None and run_dir is not None:
        check_run_dir(with_hydra, str(run_dir))


def check_run_dir(cfg: DictConfig, run_dir: str) -> None:
    """The run directory Hydra will create must be writable, before Hydra tries (its own
    failure is a traceback). Apps that write no run files (``hydra.output_subdir=null``,
    ``hydra.run.dir=.``: generate, evaluate, report) are not checked here: they check their
    own outputs."""
    if cfg.hydra.get("output_subdir") is None and run_dir == ".":
        return
    where = "paths.log_dir or hydra.run.dir" if "paths" in cfg else "hydra.run.dir"
    check_writable_dir(
        Path(run_dir),
        "the run directory",
        fix=f"point {where} at a writable folder on a disk with free space",
        create=False,
    )


def forget_hydra_run() -> None:
    """Leave no Hydra state behind: the next app (or compose) in this process starts clean,
    instead of reading this run's ``hydra.runtime`` through ``HydraConfig``."""
    clear_hydra_state()


def resolve_device(device: str) -> torch.device:
    """``auto`` (a GPU when there is one), ``cpu``, ``cuda``, ``cuda:N``; checked."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(
            f"device={device!r} is not a torch device (auto, cpu, cuda, cuda:N)."
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device} but no CUDA GPU is available; use device=cpu.")
    return resolved
