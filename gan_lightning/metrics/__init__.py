"""Sample quality scores: FID, KID and Inception Score on a chosen feature extractor, with
precision/recall/density/coverage (:mod:`~gan_lightning.metrics.prdc`), intra-class FID
(:mod:`~gan_lightning.metrics.intra_fid`) and the protocol behind every score
(:mod:`~gan_lightning.metrics.protocol`).

* :class:`GenerativeMetrics` - the training callback (``conf/metrics/``);
* :class:`Scorer` - FID/KID/IS/class histogram (+ the above) on precomputed features (callback
  and CLI);
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
from gan_lightning.metrics.intra_fid import intra_class_fid
from gan_lightning.metrics.protocol import score_protocol
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
    "intra_class_fid",
    "prepare_images",
    "resolve_extractor_name",
    "score_protocol",
    "shard",
]
