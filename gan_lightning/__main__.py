"""``python -m gan_lightning``: the commands this package installs, and a way to run them.

    python -m gan_lightning                    # list the commands and the version
    python -m gan_lightning train [key=value]  # = gan-train [key=value] (no scripts dir on PATH)
    python -m gan_lightning --version

The list is read from the installed package's metadata (``[project.scripts]`` of
pyproject.toml), so it is exactly what ``pip install`` put on ``PATH``; nothing heavy (torch,
Lightning) is imported until a command runs (see :mod:`gan_lightning.commands`).
"""

from __future__ import annotations

import sys
from importlib import metadata

from gan_lightning import version_line
from gan_lightning.commands import COMMANDS

DISTRIBUTION = "gan_lightning"


def commands() -> dict[str, metadata.EntryPoint]:
    """The console scripts of the installed distribution, by name (empty when the package is
    imported from a folder without being installed)."""
    try:
        scripts = metadata.distribution(DISTRIBUTION).entry_points
    except metadata.PackageNotFoundError:
        return {}
    return {ep.name: ep for ep in scripts if ep.group == "console_scripts"}


def listing() -> str:
    found = commands()
    lines = [f"{version_line()}: a PyTorch Lightning + Hydra framework for GANs, DCGANs and VAEs."]
    if not found:
        lines.append(
            "Not installed as a package (no console scripts); run `pip install .` "
            "(or `pip install -e .` in a checkout)."
        )
        return "\n".join(lines)
    lines.append("Commands (each takes Hydra key=value overrides, --help and --version):")
    width = max(len(name) for name in found)
    for name in sorted(found):
        lines.append(
            f"  {name:<{width}}  {COMMANDS[name].summary if name in COMMANDS else found[name].value}"
        )
    lines.append("Without the scripts on PATH: python -m gan_lightning train|generate|... [args]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(listing())
        return 0
    if args[0] == "--version":
        print(version_line())
        return 0
    found = commands()
    name = args[0] if args[0] in found else f"gan-{args[0]}"
    if name not in found:
        print(f"Error: unknown command {args[0]!r}.\n{listing()}", file=sys.stderr)
        return 2
    sys.argv = [name, *args[1:]]
    code = found[name].load()(args[1:])
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
