"""``python -m gan_lightning``: the commands this package installs, and a way to run them.

    python -m gan_lightning                    # list the commands and the version
    python -m gan_lightning train [key=value]  # = gan-train [key=value] (no scripts on PATH)
    python -m gan_lightning --version

The commands are :data:`gan_lightning.commands.COMMANDS`, the targets of pyproject.toml's
``[project.scripts]`` (a test keeps the two equal); nothing heavy (torch, Lightning) is
imported until a command runs.
"""

from __future__ import annotations

import sys

from gan_lightning import version_line
from gan_lightning.commands import COMMANDS, launch


def listing() -> str:
    width = max(len(name) for name in COMMANDS)
    return "\n".join(
        [
            f"{version_line()}: a PyTorch Lightning + Hydra framework for GANs, DCGANs and VAEs.",
            "Commands (each takes Hydra key=value overrides, --help and --version):",
            *(f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()),
            "Without the scripts on PATH: python -m gan_lightning train|generate|... [args]",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(listing())
        return 0
    if args[0] == "--version":
        print(version_line())
        return 0
    name = args[0] if args[0] in COMMANDS else f"gan-{args[0]}"
    if name not in COMMANDS:
        print(f"Error: unknown command {args[0]!r}.\n{listing()}", file=sys.stderr)
        return 2
    sys.argv = [name, *args[1:]]
    return launch(name, args[1:])


if __name__ == "__main__":
    sys.exit(main())
