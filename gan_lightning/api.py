"""The Python API: what a notebook or a script needs, without the command line.

Three paths, each a few lines (docs/extending.md, "The Python API";
``examples/quickstart.ipynb`` runs all three):

1. **Objects.** Build nets, a :class:`~gan_lightning.modules.gan.GAN` and a DataModule
   yourself and fit them with a plain ``pl.Trainer``: nothing of Hydra is involved.
2. **Configs.** :func:`compose` the config ``gan-train`` would compose from the same
   overrides (the package's ``conf/`` and, with ``config_dir=``, a config folder of your own),
   then :func:`run` it (the whole training run: checks, seeding, checkpoints, samples,
   metrics) or :func:`build` it (the DataModule, module and Trainer, to fit yourself).
3. **Checkpoints.** :func:`load_module` rebuilds the module of any checkpoint a run wrote
   (from the config saved in it, loading only tensors), and :func:`sample_grid` draws an
   image grid from it, ready for ``torchvision.utils.save_image`` or a notebook.

Everything here is also importable from the package itself (``from gan_lightning import
compose, run, load_module``), lazily: ``import gan_lightning`` stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torchvision.utils import make_grid

from gan_lightning.errors import ConfigError
from gan_lightning.generate import generate_images, sample_inputs
from gan_lightning.runtime.checkpoints import load_module
from gan_lightning.runtime.cli import CONFIG_DIR
from gan_lightning.runtime.config_search import compose_config, config_dir_entry
from gan_lightning.train import build, run

__all__ = ["build", "compose", "load_module", "run", "sample_grid"]


def compose(
    overrides: Sequence[str] = (),
    config_dir: str | Path | Sequence[str | Path] | None = None,
    config_name: str = "config",
    output_dir: str | Path | None = None,
) -> DictConfig:
    """The config ``gan-train <overrides>`` would run, composed with Hydra's compose API.

    Args:
        overrides: ``key=value`` strings, as on the command line
            (``["experiment=seed004_mlp_gan", "trainer.max_steps=20", "logger=none"]``).
        config_dir: a config folder of your own (or several), searched after the package's
            ``conf/`` like ``--config-dir``: its experiments and group options can be named
            in ``overrides``.
        config_name: the primary config (``config`` for training; ``generate``, ``evaluate``).
        output_dir: the run directory (checkpoints/, samples/ ...). Default: a new
            ``logs/<task_name>/runs/<date>`` as the CLI would make; ``paths.output_dir`` is a
            Hydra-run value that has no meaning outside a Hydra app, so it is set here.

    Hydra's process-wide state is cleared afterwards: call it as often as you like, next to
    any other app in the same process.
    """
    folders = [config_dir] if isinstance(config_dir, (str, Path)) else list(config_dir or [])
    search_path = [config_dir_entry(folder) for folder in folders]
    cfg = compose_config(
        CONFIG_DIR, config_name, list(overrides), search_path, return_hydra_config=True
    )
    with open_dict(cfg):
        run_dir = output_dir if output_dir is not None else OmegaConf.select(cfg, "hydra.run.dir")
        del cfg["hydra"]
        if "output_dir" in cfg.get("paths", {}):  # ${hydra:runtime.output_dir} in a Hydra app
            cfg.paths.output_dir = str(run_dir)
    return cfg


def sample_grid(
    module: Any,
    n: int = 64,
    nrow: int | None = None,
    seed: int | None = 0,
    label: int | None = None,
    padding: int = 2,
    truncation: float | None = None,
) -> torch.Tensor:
    """A grid of ``n`` samples of a trained module, as ``gan-generate`` draws them.

    Returns a ``(3, H, W)`` float image in [0, 1] on the CPU: ``save_image(grid, "x.png")``
    writes it, ``plt.imshow(grid.permute(1, 2, 0))`` shows it. ``seed`` fixes the latents (the
    same images on every device; ``None``: fresh ones), ``label`` the class of a conditional
    model (``None``: drawn), ``nrow`` the images per row (``None``: a square grid)."""
    if n < 1 or (nrow is not None and nrow < 1):
        raise ConfigError(f"sample_grid: n={n} and nrow={nrow} must be >= 1.")
    z, labels = sample_inputs(module, n, seed, truncation, label)
    images = generate_images(module, z, labels, batch_size=max(1, min(n, 256)))
    return make_grid(images, nrow=nrow or math.ceil(math.sqrt(n)), padding=padding)
