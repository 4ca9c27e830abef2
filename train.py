"""Train an experiment: ``python train.py [experiment=...] [key=value ...]`` (see README)."""

import sys

from gan_lightning.train import main

if __name__ == "__main__":
    sys.exit(main())
