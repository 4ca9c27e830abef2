"""Callbacks that turn a training run into things people look at."""

from gan_lightning.callbacks.curves import TrainingCurves
from gan_lightning.callbacks.interpolation import LatentInterpolation
from gan_lightning.callbacks.learning_rates import LearningRates
from gan_lightning.callbacks.manifold import LatentManifold
from gan_lightning.callbacks.memory_format import MemoryFormat
from gan_lightning.callbacks.reconstructions import ReconstructionGrid
from gan_lightning.callbacks.run_results import RunResults
from gan_lightning.callbacks.sample_gif import SampleGif
from gan_lightning.callbacks.samples import SampleGrid

__all__ = [
    "LatentInterpolation",
    "LatentManifold",
    "MemoryFormat",
    "LearningRates",
    "ReconstructionGrid",
    "RunResults",
    "SampleGif",
    "SampleGrid",
    "TrainingCurves",
]
