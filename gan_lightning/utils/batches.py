"""What a batch is: ``(images, labels)`` from the project's DataModules, or bare images.

Every DataModule yields ``(images, labels)`` pairs, but Lightning hooks, metrics and tests
also see bare image tensors; these two helpers are the one place that knows both shapes.
"""

from __future__ import annotations

from typing import Any

import torch


def images_of(batch: Any) -> torch.Tensor:
    """The images of a batch, whether it is ``(images, labels)`` or a bare tensor."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def labels_of(batch: Any) -> torch.Tensor | None:
    """The labels of an ``(images, labels)`` batch; ``None`` for bare images."""
    if isinstance(batch, (tuple, list)) and len(batch) > 1:
        return batch[1]
    return None
