"""Small stand-ins shared by many test modules: tiny nets and GANs, a scripted module that logs
known values, a fake trainer for calling callback hooks directly, and tiny real checkpoints."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gan_lightning.data.loaders import passthrough_collate
from gan_lightning.data.tensors import TensorImageDataset
from gan_lightning.modules.base import GenerativeModule
from gan_lightning.modules.gan import GAN
from gan_lightning.nets.mlp import MLPDiscriminator, MLPGenerator


def tiny_gan(image_shape=(1, 4, 4), latent_dim: int = 4, **kwargs) -> GAN:
    """An MLP GAN with one hidden layer of 8 units in each net, Adam 1e-3 for both."""
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    return GAN(
        generator=MLPGenerator(latent_dim=latent_dim, image_shape=image_shape, hidden_sizes=[8]),
        discriminator=MLPDiscriminator(image_shape=image_shape, hidden_sizes=[8]),
        optimizer_g=adam,
        optimizer_d=adam,
        **kwargs,
    )


def tensor_loader(n: int = 64, batch_size: int = 4, shape=(1, 4, 4), seed: int = 0) -> DataLoader:
    """Random images in [-1, 1], served like the project's in-memory DataModules."""
    g = torch.Generator().manual_seed(seed)
    data = TensorImageDataset(
        torch.rand(n, *shape, generator=g) * 2 - 1, torch.zeros(n, dtype=torch.long)
    )
    return DataLoader(
        data, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=passthrough_collate
    )


def fake_trainer(epoch: int = 0, **extra) -> SimpleNamespace:
    """What a picture callback reads from a Trainer when its hooks are called by hand."""
    return SimpleNamespace(
        current_epoch=epoch,
        sanity_checking=False,
        loggers=[],
        global_step=0,
        is_global_zero=True,
        **extra,
    )


class ScriptedGAN(pl.LightningModule):
    """Logs known values, the way the GAN and the metrics callback name them, and counts its
    batches like every module of the project (``batches_seen``)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.automatic_optimization = False
        self.batches_seen = 0

    def training_step(self, batch, batch_idx):
        epoch = self.current_epoch
        self.log_dict(
            {
                "train/d_loss": torch.tensor(1.0 + epoch + batch_idx / 10),
                "train/g_loss": torch.tensor(2.0 - epoch),
            },
            on_step=True,
            on_epoch=True,
            prog_bar=True,
        )  # as the GAN does: d_loss/g_loss in the progress bar
        self.batches_seen += 1

    def validation_step(self, batch, batch_idx):
        self.log_dict(
            {"val/d_loss": torch.tensor(5.0 + self.current_epoch), "val/g_loss": torch.tensor(6.0)}
        )

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            epoch = self.current_epoch
            self.log_dict(
                {
                    "val/fid_fake": 100.0 - 10 * epoch,
                    "val/kid_mean_fake": 1.0 / (epoch + 1),
                    "val/kid_std_fake": 0.1,
                }
            )

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.zeros(4, 1)), batch_size=1)

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.zeros(1, 1)), batch_size=1)


# --------------------------------------------------------------------------- real checkpoints
#: model override -> the small widths that keep its smoke run cheap
def one_epoch_of(batches: int) -> list[str]:
    """A quiet one-epoch subprocess run of ``batches`` real batches and one validation batch,
    with 16-unit MLP nets: what the sweep and DDP tests train in each job."""
    return [
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={batches}",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "model.generator.hidden_sizes=[16]",
        "model.discriminator.hidden_sizes=[16]",
    ]


TINY = {
    "gan": [
        "model=gan",
        "model.generator.hidden_sizes=[16,32]",
        "model.discriminator.hidden_sizes=[32,16]",
    ],
    "dcgan": ["model=dcgan", "model.generator.base_width=8", "model.discriminator.base_width=8"],
    "vae": ["model=vae", "model.encoder.hidden_sizes=[32]", "model.decoder.hidden_sizes=[32]"],
    "cgan": [
        "model=gan",
        "model.generator.hidden_sizes=[16,32]",
        "model.discriminator.hidden_sizes=[32,16]",
        "model.num_classes=10",
        "model.conditioning=projection",
    ],
}
_CHECKPOINTS: dict[str, Path] = {}


def tiny_checkpoint(model: str, root: Path, mnist_dir: Path) -> Path:
    """A checkpoint of a 3-batch real-MNIST run of ``model`` (trained once per session)."""
    from gan_lightning.train import run
    from tests.conftest import SMOKE, compose_config

    if model not in _CHECKPOINTS:
        out = root / f"tiny_{model}"
        overrides = [
            *SMOKE,
            "metrics=none",
            f"data.data_dir={mnist_dir}",
            *TINY[model],
            "callbacks.interpolation=null",
            "callbacks.sample_gif=null",
            "callbacks.curves=null",
        ]
        run(compose_config(overrides, out))
        _CHECKPOINTS[model] = out / "checkpoints" / "last.ckpt"
    return _CHECKPOINTS[model]


class BatchProbe(pl.Callback):
    """Added to a real (DDP) run with ``+callbacks.probe._target_=tests.helpers.BatchProbe``:
    every rank writes ``<out_dir>/rank<r>.pt`` at the end of training with a fingerprint of
    every real image it trained on, its own per-step losses, its BatchNorm layer types and its
    final weights. It never changes training."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.samples: list[tuple[float, float]] = []
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        images = (batch[0] if isinstance(batch, (tuple, list)) else batch).detach().double()
        flat = images.flatten(1)
        weights = torch.arange(1, flat.shape[1] + 1, dtype=torch.float64)
        self.samples += [
            (round(float(a), 6), round(float(b), 6))
            for a, b in zip(flat.sum(1), (flat * weights).sum(1), strict=True)
        ]
        self.steps.append(
            {
                "epoch": trainer.current_epoch,
                **{
                    k: float(v)
                    for k, v in trainer.callback_metrics.items()
                    if k.endswith("_step") and v.numel() == 1
                },
            }
        )

    def on_train_end(self, trainer, pl_module) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "world_size": trainer.world_size,
                "samples": self.samples,
                "steps": self.steps,
                "norms": sorted(
                    {type(m).__name__ for m in pl_module.modules() if "Norm" in type(m).__name__}
                ),
                "state_dict": {k: v.detach().cpu() for k, v in pl_module.state_dict().items()},
            },
            self.out_dir / f"rank{trainer.global_rank}.pt",
        )


def run_benchmark(module: str, args: list[str], data_dir: Path, timeout: int = 600):
    """``python -m benchmarks.<module> *args`` from the checkout, on the cached MNIST, W&B
    offline: what the benchmark smoke tests run."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "GAN_LIGHTNING_DATA_DIR": str(data_dir),
        "WANDB_MODE": "offline",
        "PYTHONPATH": os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH")) if p),
    }
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class PidProbe(pl.Callback):
    """Added to a real (DDP) run with ``+callbacks.pids._target_=tests.helpers.PidProbe``:
    every rank writes its process id to ``<out_dir>/rank<r>.pid`` when training starts (so a
    test can signal one rank only) and sleeps ``seconds_per_batch`` after each batch (so a
    signal lands mid-run on a fast machine). It never changes what is trained."""

    def __init__(self, out_dir: str, seconds_per_batch: float = 0.0) -> None:
        self.out_dir = Path(out_dir)
        self.seconds_per_batch = float(seconds_per_batch)

    def on_train_start(self, trainer, pl_module) -> None:
        import os

        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.pid").write_text(str(os.getpid()))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import time

        time.sleep(self.seconds_per_batch)


def fill_disk(path: Path, leave_bytes: int = 0) -> Path:
    """Take all but ``leave_bytes`` of the free space of ``path``'s disk with ``path/filler``."""
    filler = Path(path) / "filler"
    left = shutil.disk_usage(path).free - leave_bytes
    with open(filler, "ab", buffering=0) as handle:
        while left > 0:
            try:
                left -= handle.write(b"\0" * min(left, 1 << 20))
            except OSError:
                break  # a file system keeps some bytes back: full is full
    return filler


class DiskFault(pl.Callback):
    """Added to a real run with ``+callbacks.fault._target_=tests.helpers.DiskFault``: at the
    end of real batch ``at_batch`` it breaks the disk under ``path`` the way a machine does
    mid-run, so the run's next write meets the fault.

    ``fault``: ``fill`` (another process fills the disk: a filler file takes all but
    ``leave_bytes`` of its free space) or ``file_for_folder`` (the folder ``path`` is deleted
    and a file put in its place)."""

    def __init__(self, path: str, at_batch: int, fault: str = "fill", leave_bytes: int = 0):
        self.path = Path(path)
        self.at_batch = int(at_batch)
        self.fault = fault
        self.leave_bytes = int(leave_bytes)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.batches_seen != self.at_batch:
            return
        if self.fault == "fill":
            fill_disk(self.path, self.leave_bytes)
        elif self.fault == "file_for_folder":
            shutil.rmtree(self.path)
            self.path.write_text("not a folder\n")
        else:
            raise ValueError(f"unknown fault {self.fault!r}")


class RampModule(GenerativeModule):
    """A 'generator' whose image brightness is sigmoid(z1) on the left half and sigmoid(z2) on
    the right half, so a grid's layout can be read back from its pixels."""

    def __init__(self, latent_dim: int = 2, prior=None) -> None:
        super().__init__(latent_dim, (0.0, 1.0), prior)
        self.net = nn.Identity()

    def decode(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        left = torch.sigmoid(z[:, 0]).view(-1, 1, 1, 1).expand(-1, 1, 8, 4)
        right = torch.sigmoid(z[:, 1 % z.shape[1]]).view(-1, 1, 1, 1).expand(-1, 1, 8, 4)
        return torch.cat([left, right], dim=3)  # (N, 1, 8, 8)

    def sampling_nets(self) -> list[nn.Module]:
        return [self.net]


def fit_tiny(model, batches: int, *callbacks, log_every: int = 50, datamodule=None) -> pl.Trainer:
    """Fit ``model`` on :func:`tensor_loader` (or ``datamodule``) for ``batches`` real batches
    on the CPU, with nothing but ``callbacks`` around it (no logger, checkpoints, progress bar
    or summary)."""
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=model.optimizer_steps_for(batches),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=log_every,
        callbacks=list(callbacks),
    )
    torch.manual_seed(0)
    if datamodule is not None:
        trainer.fit(model, datamodule=datamodule)
    else:
        trainer.fit(model, train_dataloaders=tensor_loader())
    return trainer
