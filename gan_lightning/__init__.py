"""gan-lightning: a PyTorch Lightning + Hydra experiment framework for GANs, DCGANs and VAEs.

The Python API (docs/extending.md) is importable from here, lazily: ``import gan_lightning``
loads neither torch nor Lightning; ``gan_lightning.GAN`` (or ``from gan_lightning import
GAN``) imports what it names on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

#: The one version of the package: pyproject.toml reads it (``dynamic = ["version"]``) and
#: every command's ``--version`` prints it.
__version__ = "0.1.0"


def version_line() -> str:
    """What ``--version`` prints, for every command and ``python -m gan_lightning``."""
    return f"gan_lightning {__version__}"


#: Public name -> the module that defines it (imported on first access).
_LAZY = {
    # 1. objects: modules, nets and DataModules to build and fit with a plain pl.Trainer
    "GAN": "gan_lightning.modules.gan",
    "VAE": "gan_lightning.modules.vae",
    "GenerativeModule": "gan_lightning.modules.base",
    "MLPGenerator": "gan_lightning.nets.mlp",
    "MLPDiscriminator": "gan_lightning.nets.mlp",
    "DCGANGenerator": "gan_lightning.nets.dcgan",
    "DCGANDiscriminator": "gan_lightning.nets.dcgan",
    "BaseDataModule": "gan_lightning.data.base",
    "MNISTDataModule": "gan_lightning.data.mnist",
    # 2. configs: compose with overrides (and a config folder of your own), build or run
    "compose": "gan_lightning.api",
    "build": "gan_lightning.api",
    "run": "gan_lightning.api",
    # 3. checkpoints: rebuild a trained module, sample a grid
    "load_module": "gan_lightning.api",
    "sample_grid": "gan_lightning.api",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import a public name of the API on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gan_lightning' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
