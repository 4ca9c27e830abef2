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
  never a traceback.

The helpers every CLI needs (the error filter, the device choice) live here, once.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from gan_lightning.errors import ConfigError, DataSourceError, NonFiniteError

log = logging.getLogger(__name__)

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")
#: The exit code of a run stopped by a user error (Hydra's own errors exit with 1).
USER_ERROR_EXIT = 2


def user_error(err: BaseException | None) -> BaseException | None:
    """The :class:`ConfigError`/:class:`DataSourceError`/:class:`NonFiniteError` behind ``err``,
    if any (Hydra wraps errors raised in ``__init__`` of instantiated classes)."""
    while err is not None:
        if isinstance(err, (ConfigError, DataSourceError, NonFiniteError)):
            return err
        err = err.__cause__ or (
            err.__context__ if isinstance(err, InstantiationException) else None
        )
    return None


def report_user_errors(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Run ``task``; a user error becomes one ``Error:`` line on stderr and exit code 2."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except Exception as err:  # noqa: BLE001 - only user errors are reformatted
            user = user_error(err)
            if user is None:
                raise
            log.error("Stopped by a %s (message below).", type(user).__name__)
            print(f"\nError: {user}", file=sys.stderr)
            sys.exit(USER_ERROR_EXIT)

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


def hydra_cli(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[..., int]]:
    """Turn ``task(cfg)`` into a console-script ``main(argv=None) -> exit code``: a Hydra app
    on ``conf/<config_name>.yaml`` with the project's error handling and ``group=null``.

    ``main()`` reads ``sys.argv`` like any console script; ``main(["key=value", ...])`` runs
    the same app on those arguments (tests, notebooks) and returns its exit code.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[..., int]:
        app = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(
            report_user_errors(task)
        )

        @functools.wraps(task)
        def main(argv: list[str] | None = None) -> int:
            args = sys.argv[1:] if argv is None else list(argv)
            sys.argv = [sys.argv[0], *null_group_overrides(args)]
            try:
                app()
            except SystemExit as done:  # --help, Hydra's own errors, report_user_errors
                return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            finally:
                forget_hydra_run()
            return 0

        return main

    return decorate


def forget_hydra_run() -> None:
    """Leave no Hydra state behind: the next app (or compose) in this process starts clean,
    instead of reading this run's ``hydra.runtime`` through ``HydraConfig``."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().cfg = None
    GlobalHydra.instance().clear()


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
