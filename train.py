"""Train an experiment: ``python train.py [experiment=...] [key=value ...]`` (see README)."""

import sys

from gan_lightning.runtime.cli import show_help

if __name__ == "__main__":
    code = show_help(
        "config", sys.argv[1:], "gan_lightning.train"
    )  # --help without importing torch or Lightning
    if code is None:
        from gan_lightning.train import main

        code = main()
    sys.exit(code)
