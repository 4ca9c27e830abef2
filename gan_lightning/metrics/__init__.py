"""Sample quality scores: FID, KID and Inception Score on a chosen feature extractor.

* :class:`GenerativeMetrics` - the training callback (``conf/metrics/``);
* :class:`Scorer` - FID/KID/IS/class histogram on precomputed features (callback and CLI);
* extractors ``digits`` (the project's MNIST classifier) and ``inception`` (torchmetrics'
  InceptionV3), and :func:`prepare_images`, the one image conversion for both.

``python -m gan_lightning.evaluate ckpt=...`` scores checkpoints after training.
"""

from gan_lightning.metrics.callback import GenerativeMetrics
from gan_lightning.metrics.extractors import (
    EXTRACTORS,
    DigitsExtractor,
    FeatureExtractor,
    InceptionExtractor,
    InputSpec,
    build_extractor,
    prepare_images,
    resolve_extractor_name,
)
from gan_lightning.metrics.scores import Scorer, shard

__all__ = [
    "EXTRACTORS",
    "DigitsExtractor",
    "FeatureExtractor",
    "GenerativeMetrics",
    "InceptionExtractor",
    "InputSpec",
    "Scorer",
    "build_extractor",
    "prepare_images",
    "resolve_extractor_name",
    "shard",
]
