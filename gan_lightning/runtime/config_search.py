"""The user's own config folders, seen the same way by every place that composes a config.

A researcher keeps experiments and group options (``experiment/mine.yaml``,
``model/generator/mine.yaml``, ``data/mine.yaml``) in a folder of their own and adds it to
Hydra's config search path, next to the package's ``conf/``::

    gan-train --config-dir ~/my_configs experiment=mine
    gan-train hydra.searchpath=[file://$HOME/my_configs] experiment=mine

Hydra's app composes with that search path, but the project also composes configs *before*
the app runs (the one-line config checks of :func:`gan_lightning.runtime.cli.check_composition`,
``resume=auto`` looking for the run to continue) and from Python (:func:`gan_lightning.api.compose`).
Each of them must search the same folders in the same order, or a user's option is refused
before Hydra ever sees ``--config-dir``. This module reads the command line exactly as Hydra
does (its own argument parser) and composes with the same search path: the package's
``conf/`` first, then ``--config-dir``, then the ``hydra.searchpath`` entries (Hydra's order:
an option of the package wins over a same-named one of the user's folder).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.compat import clear_hydra_state, hydra_arguments

SEARCHPATH_KEY = "hydra.searchpath"
FILE_SCHEME = "file://"


def override_key(override: str) -> str:
    """``+a.b=1`` / ``~a.b`` / ``a.b=1`` -> ``a.b``."""
    return override.split("=", 1)[0].lstrip("+~")


def hydra_quote(value: str) -> str:
    """``value`` as one quoted Hydra override value, so a path with ``=``, ``,``, spaces or
    brackets reaches the config unchanged (``hydra.run.dir='/a b/c=1'``)."""
    # Hydra reads a backslash literally except before a quote or at the end of the value.
    escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, str(value))
    return "'" + escaped.replace("'", "\\'") + "'"


@dataclass(frozen=True)
class CommandLine:
    """A Hydra app's command line, read by Hydra's own parser.

    ``search_path`` holds the extra config search path entries in Hydra's order:
    ``file://<--config-dir>`` first, then the ``hydra.searchpath`` entries."""

    overrides: list[str]
    config_name: str | None = None
    config_path: str | None = None
    search_path: list[str] = field(default_factory=list)
    multirun: bool = False
    #: --help, --hydra-help, --cfg, --info, --shell-completion, --experimental-rerun: Hydra
    #: prints (or replays) something instead of composing this command line into a run.
    not_a_run: bool = False

    @property
    def config_dirs(self) -> list[Path]:
        """The local folders of :attr:`search_path` (``file://`` entries)."""
        return [Path(p[len(FILE_SCHEME) :]) for p in self.search_path if p.startswith(FILE_SCHEME)]


def searchpath_value(overrides: Sequence[str]) -> list[str]:
    """The entries of the last ``hydra.searchpath=[...]`` override (``[]`` if none)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    given = [o for o in overrides if override_key(o) == SEARCHPATH_KEY]
    if not given:
        return []
    try:
        value = OverridesParser.create().parse_override(given[-1]).value()
    except HydraException as err:
        raise ConfigError(f"{given[-1]}: {str(err).splitlines()[0]}") from err
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"{given[-1]} must be a list of folders, e.g. hydra.searchpath=[file:///abs/configs]."
        )
    return list(value)


def parse_command_line(argv: Sequence[str]) -> CommandLine | None:
    """``argv`` as Hydra will read it; ``None`` when Hydra's parser refuses it (Hydra then
    reports that itself). A ``--config-dir`` or ``file://`` search path entry that is not a
    folder is a :class:`ConfigError`."""
    args = hydra_arguments(list(argv))
    if args is None:
        return None
    search_path = []
    if args.config_dir is not None:
        folder = Path(args.config_dir).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(
                f"--config-dir={args.config_dir} is not a folder; pass the folder that holds "
                "your experiment/, model/, data/ ... options (docs/extending.md)."
            )
        search_path.append(f"{FILE_SCHEME}{folder}")
    for entry in searchpath_value(args.overrides):
        if entry.startswith(FILE_SCHEME) and not Path(entry[len(FILE_SCHEME) :]).is_dir():
            raise ConfigError(
                f"hydra.searchpath entry {entry} is not a folder; use an absolute path, "
                "e.g. hydra.searchpath=[file:///home/me/configs]."
            )
        search_path.append(entry)
    not_a_run = bool(
        args.help
        or args.hydra_help
        or args.cfg
        or args.info
        or args.shell_completion
        or args.experimental_rerun
    )
    return CommandLine(
        overrides=list(args.overrides),
        config_name=args.config_name,
        config_path=args.config_path,
        search_path=search_path,
        multirun=bool(args.multirun),
        not_a_run=not_a_run,
    )


def searchpath_override(search_path: Sequence[str]) -> str:
    """``hydra.searchpath=['file:///a', ...]``, each entry quoted."""
    return f"{SEARCHPATH_KEY}=[{','.join(hydra_quote(p) for p in search_path)}]"


def config_dir_entry(folder: str | Path) -> str:
    """A search path entry for a local folder: ``file://<absolute path>``, checked."""
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(
            f"config_dir={folder} is not a folder; pass the folder that holds your "
            "experiment/, model/, data/ ... options (docs/extending.md)."
        )
    return f"{FILE_SCHEME}{path}"


def compose_config(
    config_dir: str,
    config_name: str,
    overrides: Sequence[str] = (),
    search_path: Sequence[str] = (),
    return_hydra_config: bool = False,
) -> DictConfig:
    """Compose ``config_name`` of ``config_dir`` (the package's ``conf/``) with ``overrides``,
    searching ``search_path`` (the user's folders) after it, as the Hydra app would.

    A ``hydra.searchpath`` override among ``overrides`` is replaced by ``search_path`` (which
    already holds its entries, see :func:`parse_command_line`). Hydra's process-wide state is
    cleared afterwards, so an app or compose that follows starts clean."""
    from hydra import compose, initialize_config_dir

    overrides = [o for o in overrides if override_key(o) != SEARCHPATH_KEY]
    if search_path:
        overrides.append(searchpath_override(search_path))
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            return compose(
                config_name=config_name,
                overrides=overrides,
                return_hydra_config=return_hydra_config,
            )
    finally:
        clear_hydra_state()
