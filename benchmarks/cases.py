"""The benchmarked configurations, composed from ``conf/`` exactly as ``train.py`` composes
them, so the plain loop and the project train the same nets with the same settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from gan_lightning.runtime.cli import CONFIG_DIR, forget_hydra_run

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    """One benchmarked configuration: a name and the ``train.py`` overrides that make it."""

    name: str
    overrides: tuple[str, ...]
    description: str
    #: Warm-up steps before timing (allocator, oneDNN primitive caches, first-epoch effects).
    warmup_steps: int = 20
    #: Tags: which target rows this case belongs to.
    tags: tuple[str, ...] = field(default=())
    #: > 0: train on this many random uint8 images of the config's ``data.image_shape``
    #: instead of the DataModule's (the plain loop only: no files to read).
    synthetic: int = 0


CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case(
            "gan",
            ("experiment=seed003_mlp_gan",),
            "MLP GAN of seed 003 (G 100-256-512-1024-784, D 784-1024-512-256-1 + dropout, "
            "noisy labels), batch 32",
            warmup_steps=30,
        ),
        Case(
            "gan_default",
            (),
            "MLP GAN of seed 000, `python train.py`'s default model, batch 64",
            warmup_steps=30,
        ),
        Case("dcgan64", ("model=dcgan", "data.batch_size=64"), "DCGAN 28x28, batch 64", 5),
        Case("dcgan128", ("model=dcgan", "data.batch_size=128"), "DCGAN 28x28, batch 128", 4),
        Case("vae", ("model=vae",), "MLP VAE of seed 002 (2-d latent), batch 64", 30),
    )
}


#: Cases measured only with ``--device cuda``: too slow for a CPU (a 64x64 DCGAN step at
#: batch 128 takes ~11 s on the project's 2-core box).
GPU_CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case(
            "dcgan3x64",
            ("model=dcgan", "data=celeba", "data.batch_size=128"),
            "DCGAN 3x64x64 (CelebA's shape) on synthetic uint8 images, batch 128",
            10,
            synthetic=4096,
        ),
    )
}


def child_env() -> dict[str, str]:
    """The environment of a benchmarked ``train.py`` child: offline W&B unless the user chose,
    and this checkout first on the import path."""
    return {
        **os.environ,
        "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
        ),
    }


def data_dir() -> str:
    """Where MNIST lives: ``$GAN_LIGHTNING_DATA_DIR`` or ``./data``, as ``conf/paths``."""
    return os.environ.get("GAN_LIGHTNING_DATA_DIR", str(REPO / "data"))


def compose_config(overrides: list[str] | tuple[str, ...], output_dir: str | Path) -> DictConfig:
    """``conf/config.yaml`` with ``overrides``, its run directory at ``output_dir``.

    ``paths.output_dir`` is Hydra's run directory in a real run (``${hydra:runtime...}``);
    outside a Hydra app it must be given, like the test suite does.
    """
    forget_hydra_run()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(Path(output_dir) / "logs")
        cfg.paths.data_dir = data_dir()
    forget_hydra_run()
    return cfg


@dataclass
class CaseData:
    """What the plain loops need from a composed config: nets, optimizers, data, settings."""

    cfg: DictConfig
    kind: str  # "gan" or "vae"
    batch_size: int
    pixel_range: tuple[float, float]
    train_images: torch.Tensor  # uint8 (N, 1, 28, 28), the DataModule's training split
    train_indices: torch.Tensor | None  # their positions in torchvision's 60k training set
    #: Where the plain loop trains: the nets and ``train_images`` are moved there once.
    device: str = "cpu"


def synthetic_case_data(cfg: DictConfig, n: int, device: str = "cpu") -> CaseData:
    """``n`` random uint8 images of ``cfg.data.image_shape`` (seeded), no DataModule."""
    shape = tuple(int(v) for v in cfg.data.image_shape)
    images = torch.randint(
        0, 256, (n, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    return case_data(cfg, images, None, device)


def case_data(
    cfg: DictConfig, images: torch.Tensor, train_indices: torch.Tensor | None, device: str
) -> CaseData:
    """A case's training tensors with what the loops read from its config."""
    target = OmegaConf.select(cfg, "model._target_")
    return CaseData(
        cfg=cfg,
        kind="vae" if target.endswith(".VAE") else "gan",
        batch_size=int(cfg.data.batch_size),
        pixel_range=tuple(float(v) for v in cfg.data.pixel_range),
        train_images=images,
        train_indices=train_indices,
        device=device,
    )


def load_case_data(cfg: DictConfig, device: str = "cpu") -> CaseData:
    """The DataModule's own training tensors (the same uint8 images, the same split), and
    where they sit in torchvision's 60k training set (for the DataLoader reference)."""
    from gan_lightning.data.sources.mnist import read_mnist

    if cfg.data.get("digits") is not None:
        raise ValueError("the benchmark cases train on all ten digits")
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    n_total = read_mnist(datamodule.data_dir, train=True)[0].shape[0]
    if datamodule.num_val(n_total):
        train_idx, _ = datamodule.split_indices(n_total)
    else:
        train_idx = torch.arange(n_total)
    images = datamodule.train_set.images
    if images.shape[0] != train_idx.shape[0]:
        raise RuntimeError("the DataModule's training split changed; update benchmarks/cases.py")
    return case_data(cfg, images, train_idx, device)


def build_nets(cfg: DictConfig) -> dict[str, Any]:
    """The nets, prior and optimizer factories of ``cfg.model``, built by the same Hydra
    ``instantiate`` calls that build the LightningModule's arguments."""
    model_cfg = cfg.model
    if OmegaConf.select(cfg, "model._target_").endswith(".VAE"):
        return {
            "encoder": instantiate(model_cfg.encoder),
            "decoder": instantiate(model_cfg.decoder),
            "optimizer": instantiate(model_cfg.optimizer),
        }
    return {
        "generator": instantiate(model_cfg.generator),
        "discriminator": instantiate(model_cfg.discriminator),
        "optimizer_g": instantiate(model_cfg.optimizer_g),
        "optimizer_d": instantiate(model_cfg.optimizer_d),
        "prior": instantiate(model_cfg.prior),
    }
