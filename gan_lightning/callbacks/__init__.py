"""Callbacks that turn a training run into things people look at."""

from gan_lightning.callbacks.samples import SampleGrid

__all__ = ["SampleGrid"]
