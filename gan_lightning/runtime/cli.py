"""One command-line style for every entry point: Hydra ``key=value`` overrides.

``train.py`` / ``gan-train``, ``gan-generate``, ``gan-evaluate`` and
``python -m gan_lightning.metrics.train_classifier`` are all Hydra apps on a config in
``conf/`` (``config.yaml``, ``generate.yaml``, ``evaluate.yaml``, ``train_classifier.yaml``),
so they share:

* ``key=value`` arguments checked against the config (a typo is an error, not ignored);
* ``--help`` (usage, config groups and the composed config) and ``--cfg job``;
* ``group=null`` to switch a config group off (Hydra 1.3 itself rejects it);
* config folders of the user's own (``--config-dir DIR``, ``hydra.searchpath=[file://DIR]``):
  the checks below compose with them too (:mod:`gan_lightning.runtime.config_search`);
* errors a user can fix (:class:`~gan_lightning.errors.ConfigError`,
  :class:`~gan_lightning.errors.DataSourceError`) as one ``Error: ...`` line and exit code 2,
  never a traceback;
* faults of the machine (:class:`~gan_lightning.errors.FileSystemError`, and any ``OSError``
  of a full, read-only or missing path, :mod:`gan_lightning.runtime.filesystem`) the same
  way: one line naming the path, what was being done and the fix; exit code 2, or
  :data:`~gan_lightning.runtime.filesystem.STORAGE_STOP_EXIT` for a training run stopped by
  one. The run directory Hydra is about to create is checked before Hydra starts.

The helpers every CLI needs (the error filter, the device choice) live here, once. The
module imports neither torch nor Lightning, so ``--help`` and ``--version`` of the console
scripts (:mod:`gan_lightning.commands`) answer in a fraction of a second.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from gan_lightning import version_line
from gan_lightning.errors import ConfigError, DataSourceError, FileSystemError, NonFiniteError
from gan_lightning.runtime.compat import clear_hydra_state
from gan_lightning.runtime.config_search import (
    CommandLine,
    compose_config,
    hydra_quote,
    override_key,
    parse_command_line,
)
from gan_lightning.runtime.filesystem import check_writable_dir, from_os_error, is_file_system_fault

__all__ = [
    "CONFIG_DIR",
    "USER_ERROR_EXIT",
    "check_composition",
    "check_run_dir",
    "forget_hydra_run",
    "hydra_cli",
    "hydra_quote",
    "null_group_overrides",
    "report_user_errors",
    "resolve_device",
    "show_help",
    "user_error",
]

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: The imported package's folder: a checkout's ``gan_lightning/`` or an installed one in
#: ``site-packages``. The configs ship inside it (package data), so they are found either way.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
CONFIG_DIR = str(PACKAGE_DIR / "conf")
#: The exit code of a run stopped by a user error (Hydra's own errors exit with 1).
USER_ERROR_EXIT = 2


def checkout_root() -> Path | None:
    """The source checkout the package is imported from (its folder holds ``pyproject.toml``
    and ``train.py`` next to ``gan_lightning/``), or None for an installed package: code must
    never assume a checkout around the package it runs."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "train.py").is_file():
        return root
    return None


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
    """``logger=null`` -> ``logger=none`` for every group that has a ``none.yaml`` (in the
    package's ``conf/`` or in a config folder of the user's, ``--config-dir``).

    Hydra 1.3 rejects ``group=null`` on the command line ("Config group override must be a
    string"), yet it is what users type to switch a group off; ``none.yaml`` is that option.
    """
    try:
        command = parse_command_line(argv)
    except ConfigError:
        command = None  # reported by check_composition, with the rest of the command line
    folders = [Path(CONFIG_DIR), *(command.config_dirs if command else [])]
    groups = {p.parent.name for folder in folders for p in folder.glob("*/none.yaml")}
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and value in ("null", "None") and key.lstrip("+") in groups:
            arg = f"{key.lstrip('+')}=none"
        out.append(arg)
    return out


HELP_FLAGS = ("--help", "-h", "--hydra-help")


def show_help(config_name: str, argv: list[str], app_module: str) -> int | None:
    """``--help`` / ``--hydra-help`` of the app on ``conf/<config_name>.yaml`` whose task
    lives in ``app_module``, without importing torch or Lightning (seconds of a help screen):
    Hydra prints the help and exits before it would call a task. ``None`` when ``argv`` asks
    for no help."""
    if not any(arg in HELP_FLAGS for arg in argv):
        return None

    def task(cfg: DictConfig) -> None:  # never called: Hydra exits after the help
        return None

    task.__module__ = app_module  # Hydra names the app (and its help screen) after it
    app = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(task)
    saved, sys.argv = sys.argv, [sys.argv[0], *null_group_overrides(argv)]
    try:
        app()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.argv = saved
        forget_hydra_run()
    return 0


def hydra_cli(
    config_name: str, prepare_argv: Callable[[list[str]], list[str]] | None = None
) -> Callable[[Callable[[DictConfig], Any]], Callable[..., int]]:
    """Turn ``task(cfg)`` into a console-script ``main(argv=None) -> exit code``: a Hydra app
    on ``conf/<config_name>.yaml`` with the project's error handling and ``group=null``.

    ``main()`` reads ``sys.argv`` like any console script; ``main(["key=value", ...])`` runs
    the same app on those arguments (tests, notebooks) and returns its exit code.
    ``--version`` prints the package's version (Hydra's own flag would print Hydra's).
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
            if "--version" in args:  # before Hydra, whose own --version names Hydra's
                print(version_line())
                return 0
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

        main.config_name = config_name  # type: ignore[attr-defined]  # gan_lightning.commands
        return main

    return decorate


def check_composition(config_name: str, args: list[str]) -> None:
    """Compose the config the way Hydra is about to, and turn its errors (a key that does not
    exist, an unknown group option, a malformed override) into one-line :class:`ConfigError`
    messages instead of Hydra's own report and exit code 1; then check that the run directory
    Hydra will create (and write its ``.hydra/`` and log file into) can be written
    (:func:`check_run_dir`).

    The command line is read by Hydra's own parser, so the user's config folders
    (``--config-dir``, ``hydra.searchpath``) and ``--config-name`` are honoured. Multiruns,
    ``--help``/``--cfg``/``--info`` and ``--config-path`` (another primary folder) are left to
    Hydra (each job's config is checked when it runs)."""
    command = parse_command_line(args)
    if command is None or command.multirun or command.not_a_run or command.config_path:
        return
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = [
        o for o in command.overrides if not override_key(o).startswith("hydra.")
    ]  # Hydra's own settings (run dir, launcher ...) are Hydra's to check
    errors = (HydraException, OmegaConfBaseException, ValueError)
    name = command.config_name or config_name
    try:  # one composition when it works (~0.2 s each): the config and Hydra's run directory
        with_hydra = compose_config(
            CONFIG_DIR, name, command.overrides, command.search_path, return_hydra_config=True
        )
    except errors:
        try:  # the user's config options alone decide whether the error is theirs
            compose_config(CONFIG_DIR, name, overrides, command.search_path)
        except errors as err:
            raise ConfigError(composition_message(err, command)) from err
        return  # a Hydra setting compose cannot take: Hydra itself reports it
    run_dir = OmegaConf.select(with_hydra, "hydra.run.dir", default=None)
    if run_dir is not None:
        check_run_dir(with_hydra, str(run_dir))


def composition_message(err: BaseException, command: CommandLine) -> str:
    """One line from Hydra's multi-line composition error: its first line and the list of
    available options, and where to put options of one's own if none of them is it."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    at = next((i for i, line in enumerate(lines) if line.startswith(("To append", "Available"))), 0)
    hint = lines[at] if at else ""
    if hint.startswith("Available"):  # the options follow, one a line, then the search path
        options = lines[at + 1 :]
        options = options[: next((i for i, o in enumerate(options) if o.endswith(":")), None)]
        hint += " " + ", ".join(options)
    message = " ".join([lines[0] if lines else type(err).__name__, hint]).strip()
    if lines and lines[0].startswith("In ") and "Could not find" in lines[0]:
        if command.search_path:
            message += f" (searched conf/ and {', '.join(command.search_path)})"
        else:
            message += " (an option of your own? add its folder: --config-dir=<dir>)"
    return message


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
    import torch

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
