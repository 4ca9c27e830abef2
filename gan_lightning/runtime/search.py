"""Optuna search spaces that a YAML ``hydra.sweeper.params`` entry cannot express.

Used through ``hydra.sweeper.custom_search_space`` (``conf/hparams_search/optuna.yaml``): the
sweeper calls the function for every trial after sampling the YAML params, and every
parameter suggested here becomes an override of that trial (so its name is a config key).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

#: The largest k searched for "k D updates per G update" and "k G updates per D update".
MAX_UPDATE_RATIO = 3


def update_ratio(cfg: DictConfig, trial: Any) -> None:
    """The GAN's D:G update ratio: ``model.d_steps`` in 1..k, and ``model.g_steps`` in 1..k
    only when ``d_steps`` is 1.

    Two independent choices would ask for e.g. ``d_steps=2 g_steps=3``, which the GAN refuses
    (only one of them may exceed 1): the trial would stop the whole search. ``g_steps`` is
    always suggested (its range is 1..1 after ``d_steps`` > 1), so an experiment that sets
    ``g_steps=2`` (seed 003's DCGAN) cannot combine with a sampled ``d_steps`` either.
    """
    d_steps = trial.suggest_int("model.d_steps", 1, MAX_UPDATE_RATIO)
    trial.suggest_int("model.g_steps", 1, MAX_UPDATE_RATIO if d_steps == 1 else 1)
