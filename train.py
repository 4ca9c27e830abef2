"""Train an experiment: ``python train.py [experiment=...] [key=value ...]`` (see README)."""

from gan_lightning.train import main

if __name__ == "__main__":
    main()
