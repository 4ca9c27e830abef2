"""The GAN's exponential moving average of G, updated without reading anything back to the host.

``torch.optim.swa_utils.AveragedModel`` keeps the average (its state dict is what checkpoints
hold: ``generator_ema.module.*`` and ``n_averaged``), but its ``update_parameters`` asks the
device twice per update whether ``n_averaged`` is 0, and a warm-up decay computed from
``float(n_averaged)`` would be a third read. :func:`update_ema` computes the same update on
the device: the same float64 arithmetic as the Python floats it replaces, rounded to the
weights' dtype the same way, so the average is bit-identical to the host-side recursion.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from gan_lightning.runtime.compat import foreach_lerp_


def ema_weight(n: torch.Tensor, decay: float) -> torch.Tensor:
    """``1 - min(decay, (1 + n) / (10 + n))`` on ``n``'s device (the warm-up of
    :func:`gan_lightning.modules.gan.ema_with_warmup`), in float64 where the device has it."""
    dtype = torch.float32 if n.device.type == "mps" else torch.float64
    count = n.to(dtype)
    return 1.0 - torch.clamp((1.0 + count) / (10.0 + count), max=decay)


def lerp_all(
    averaged: list[torch.Tensor], current: list[torch.Tensor], weight: torch.Tensor
) -> None:
    """``averaged.lerp_(current, weight)`` for every floating tensor (weight: a 0-d device
    tensor, rounded to each dtype); integer buffers (BatchNorm's ``num_batches_tracked``) take
    the newest value where ``weight`` is not 0."""
    groups: dict[torch.dtype, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    for target, source in zip(averaged, current, strict=True):
        if torch.is_floating_point(target):
            pair = groups.setdefault(target.dtype, ([], []))
            pair[0].append(target)
            pair[1].append(source)
        else:
            target.copy_(torch.where(weight != 0, source, target))
    for dtype, (targets, sources) in groups.items():
        foreach_lerp_(targets, sources, [weight.to(dtype)] * len(targets))


@torch.no_grad()
def update_ema(
    ema: AveragedModel, model: nn.Module, decay: float, applied: torch.Tensor | None = None
) -> None:
    """One update of the average ``ema`` towards ``model`` (parameters and buffers): a copy
    while ``n_averaged`` is 0, then the warm-up decay. ``applied`` (a 0-d 0/1 device tensor)
    masks the update on the device: 0 leaves the average and its count as they are."""
    averaged = [*ema.module.parameters(), *ema.module.buffers()]
    current = [t.detach() for t in (*model.parameters(), *model.buffers())]
    n = ema.n_averaged
    weight = torch.where(n == 0, 1.0, ema_weight(n, decay))
    if applied is not None:
        weight = weight * applied
    lerp_all(averaged, current, weight)
    if applied is None:
        n.add_(1)
    else:
        n.add_(applied.to(n.dtype))
