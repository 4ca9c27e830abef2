"""The one adapter for other libraries' private attributes that have no public equivalent.

Everything else in the project uses public APIs. What is left, and why:

* torchmetrics' ``NoTrainInceptionV3`` (the network inside its FID, KID and IS) returns only
  the first requested feature from ``forward``; its ``_torch_fidelity_forward`` returns all of
  them (pool features *and* logits) from one pass. torch-fidelity's own public ``forward``
  does too, but resizes differently (TF1-style, no antialiasing), so its features would not
  match torchmetrics' FID with its default ``antialias=True``.
* Lightning's ``WandbLogger`` keeps the keyword arguments of ``wandb.init`` in
  ``_wandb_init`` and the started run in ``_experiment``. Its public ``experiment`` property
  *starts* a run, so there is no public way to ask "has a run started?" (needed to finish only
  runs that exist, one per multirun job), nor to change the init arguments after construction
  (needed to fall back to offline when an online start fails, instead of killing training).

``tests/test_compat.py`` checks these attributes against the installed library versions, so
an upgrade that renames them fails there, loudly, rather than somewhere in a training run.
"""

from __future__ import annotations

from typing import Any


def wandb_init_kwargs(logger: Any) -> dict[str, Any]:
    """The (mutable) keyword arguments Lightning's ``WandbLogger`` will pass to ``wandb.init``."""
    return logger._wandb_init


def wandb_started_run(logger: Any) -> Any:
    """The W&B run of a Lightning ``WandbLogger`` if it has started one, else ``None``
    (unlike ``logger.experiment``, this never starts a run)."""
    return logger._experiment


def wandb_forget_run(logger: Any) -> None:
    """Drop a run that failed to start, so the next ``logger.experiment`` starts a new one."""
    logger._experiment = None


def inception_features(net: Any, images: Any) -> tuple[Any, ...]:
    """All ``features_list`` outputs of torchmetrics' ``NoTrainInceptionV3`` from one forward
    pass, in ``features_list`` order (uint8 (N, 3, H, W) images in)."""
    return net._torch_fidelity_forward(images)
