"""Class conditioning shared by the MLP and DCGAN nets: a label input for G, heads for D.

* **Generator**: a learned embedding of the label (``num_classes`` -> ``num_classes``
  dimensions, initialised like a one-hot code) concatenated to z; ``num_classes = 0`` is
  the unconditional net, identical to before.
* **Discriminator**, on top of its features h (what the net computes before its last layer):
  ``none``: the usual logit; ``projection`` (Miyato & Koyama 2018): the logit plus the inner
  product of a learned class embedding with h, so D scores "is this a real image *of class
  y*"; ``acgan`` (Odena et al. 2017): the usual logit and, from the same features, an
  auxiliary classifier's class logits (the module adds their cross-entropy to both losses).

A discriminator exposes ``extract(x) -> h``, ``head(h, y) -> logits (N,)`` and, for acgan,
``classify(h) -> (N, num_classes)``, so the module computes the features once per image;
``forward(x, y)`` is ``head(extract(x), y)``.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_lightning.errors import ConfigError

CONDITIONINGS = ("none", "acgan", "projection")


def check_conditioning(num_classes: int, conditioning: str | None, key: str) -> str:
    """``conditioning`` normalised (``None`` -> ``none``), consistent with ``num_classes``."""
    conditioning = conditioning or "none"
    if conditioning not in CONDITIONINGS:
        raise ConfigError(
            f"model.{key}.conditioning={conditioning!r} is not known; choose one of "
            f"{list(CONDITIONINGS)}."
        )
    if int(num_classes) < 0:
        raise ConfigError(f"model.{key}.num_classes must be >= 0; got {num_classes}.")
    if (conditioning == "none") != (int(num_classes) == 0):
        raise ConfigError(
            f"model.{key}: conditioning={conditioning!r} with num_classes={num_classes}; a "
            "conditional D needs num_classes >= 2 (model.num_classes=10 for MNIST), an "
            "unconditional one num_classes=0."
        )
    return conditioning


class LabelInput(nn.Module):
    """z (N, L) and labels (N,) -> (N, L + num_classes): the conditional generator's input."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        if self.num_classes:
            self.embedding = nn.Embedding(self.num_classes, self.num_classes)
            nn.init.eye_(self.embedding.weight)  # starts as the one-hot code

    @property
    def extra_features(self) -> int:
        return self.num_classes

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if not self.num_classes:
            if labels is not None:
                raise ValueError("an unconditional generator takes no labels")
            return z
        if labels is None:
            raise ValueError("a conditional generator needs labels (N,)")
        return torch.cat([z, self.embedding(labels).to(z.dtype)], dim=1)


class DiscriminatorHeads(nn.Module):
    """What a conditional discriminator adds on flattened features h (N, F)."""

    def __init__(self, features: int, num_classes: int, conditioning: str) -> None:
        super().__init__()
        self.conditioning = conditioning
        if conditioning == "projection":
            self.embedding = nn.Embedding(int(num_classes), int(features))
            nn.init.xavier_uniform_(self.embedding.weight)  # Miyato & Koyama's choice
        elif conditioning == "acgan":
            self.classifier = nn.Linear(int(features), int(num_classes))

    def project(self, logits: torch.Tensor, h: torch.Tensor, labels: torch.Tensor | None):
        """The projection term added to the unconditional logits (N,)."""
        if self.conditioning != "projection":
            return logits
        if labels is None:
            raise ValueError("a projection discriminator needs labels (N,)")
        return logits + (self.embedding(labels).to(h.dtype) * h.flatten(1)).sum(dim=1)

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        if self.conditioning != "acgan":
            raise ValueError("only an acgan discriminator has class logits")
        return self.classifier(h.flatten(1))
