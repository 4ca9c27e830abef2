"""LearningRates: optimizers named after the nets they train."""

from __future__ import annotations

import torch
from torch import nn

from gan_lightning.callbacks.learning_rates import optimizer_names


class TwoNets(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Linear(2, 2)
        self.discriminator = nn.Linear(2, 1)


def test_names_follow_the_parameters():
    model = TwoNets()
    opt_g = torch.optim.Adam(model.generator.parameters())
    opt_d = torch.optim.Adam(model.discriminator.parameters())
    assert optimizer_names(model, [opt_g, opt_d]) == ["generator", "discriminator"]
    assert optimizer_names(model, [torch.optim.Adam(model.parameters())]) == ["model"]
    mixed = torch.optim.Adam(model.parameters())
    assert optimizer_names(model, [mixed, opt_d]) == ["opt0", "discriminator"]
