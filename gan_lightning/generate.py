"""Sample images from a trained checkpoint: ``gan-generate ckpt=<path> [key=value ...]``.

Also ``python -m gan_lightning.generate`` and ``make generate CKPT=...``; the keys, their
defaults and examples are in ``conf/generate.yaml`` (``gan-generate --help`` prints them).
Works for every model of the project (GAN, DCGAN, VAE): the model is rebuilt from the config
saved in the checkpoint, so neither the training data nor the run directory is needed. Models
of your own package need ``trust=[my_project]`` (or ``model_config=<your config>``, which
rebuilds the model from your file and reads only the weights): docs/contract.md.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from omegaconf import DictConfig
from torchvision.utils import make_grid, save_image

from gan_lightning.contracts import conditions_of
from gan_lightning.errors import ConfigError
from gan_lightning.runtime.checkpoints import load_module, use_ema
from gan_lightning.runtime.cli import hydra_cli, resolve_device
from gan_lightning.runtime.config_checks import app_args
from gan_lightning.runtime.filesystem import check_output_file, check_writable_dir
from gan_lightning.runtime.safe_config import check_trust
from gan_lightning.utils.latents import check_method, default_methods, interpolate, truncate_
from gan_lightning.utils.pixels import to_unit

log = logging.getLogger(__name__)


@dataclass
class GenerateConfig:
    """The types of ``conf/generate.yaml``'s keys (the values and their meaning live there)."""

    ckpt: str | None
    n: int
    out: str | None
    format: Literal["grid", "folder"]
    nrow: int | None
    padding: int
    seed: int | None
    truncation: float | None
    interpolate: bool
    pairs: int
    steps: int
    method: str
    batch_size: int
    device: str
    label: int | None
    ema: bool | None
    trust: list[str]
    model_config: str | None


def check_config(cfg: DictConfig) -> GenerateConfig:
    """The composed config, type-checked and range-checked, as a :class:`GenerateConfig`."""
    checked = app_args(cfg, GenerateConfig, "gan-generate")
    if not checked.ckpt:
        raise ConfigError("ckpt=<path to a .ckpt> is required (see gan-generate --help).")
    if checked.n < 1 or checked.batch_size < 1 or checked.pairs < 1 or checked.padding < 0:
        raise ConfigError("n, batch_size and pairs must be >= 1 and padding >= 0.")
    if checked.nrow is not None and checked.nrow < 1:
        raise ConfigError(f"nrow must be >= 1 (or null for a square grid); got {checked.nrow}.")
    if checked.interpolate and checked.format == "folder":
        raise ConfigError("interpolate=true writes one strip image; use format=grid.")
    return checked


def sample_inputs(
    module: Any, n: int, seed: int | None, truncation: float | None, label: int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(n, latent_dim) latents from the model's prior and, for a class-conditional model, the
    labels (all ``label``, or drawn uniformly; a self-conditioned GAN's cluster ids with the
    clusters' frequencies, or all ``label``), on the CPU so a seed gives the same images on
    every device."""
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    z = module.sample_latent(n, generator, device="cpu")
    if truncation is not None:
        truncate_(z, float(truncation), module.prior, generator)
    classes = conditions_of(module)  # classes, or a self-conditioned GAN's clusters
    kind = "class" if getattr(module, "num_classes", 0) else "cluster"
    if label is not None:
        if not classes:
            raise ConfigError(f"label={label}: this model is not class-conditional; drop label=.")
        if not 0 <= label < classes:
            raise ConfigError(f"label={label} is not a {kind} of this model (0..{classes - 1}).")
        return z, torch.full((n,), int(label), dtype=torch.long)
    return z, module.sample_labels(n, generator, device="cpu") if classes else None


def generate_images(
    module: Any, z: torch.Tensor, labels: torch.Tensor | None, batch_size: int
) -> torch.Tensor:
    """Images in [0, 1] on the CPU, (N, C, H, W), generated ``batch_size`` at a time."""
    chunks = []
    for start in range(0, z.shape[0], batch_size):
        part = slice(start, start + batch_size)
        images = module.generate(z[part], None if labels is None else labels[part])
        chunks.append(to_unit(images, module.pixel_range).cpu())
    return torch.cat(chunks)


def write_grid(images: torch.Tensor, nrow: int, padding: int, out: Path) -> torch.Tensor:
    grid = make_grid(images, nrow=nrow, padding=padding)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, out)
    return grid


def output_path(cfg: GenerateConfig) -> Path:
    """Where the images go (``out=`` or its default), checked to be writable before the
    model is loaded: a file for a grid or an interpolation, a folder for ``format=folder``."""
    fix = "pass out=<a writable path>"
    if cfg.interpolate:
        return check_output_file(cfg.out or "interpolation.png", "the output file (out=)", fix)
    if cfg.format == "folder":
        return check_writable_dir(cfg.out or "samples", "the output folder (out=)", fix)
    return check_output_file(cfg.out or "samples.png", "the output file (out=)", fix)


def run(cfg: GenerateConfig) -> list[Path]:
    """Generate and write; returns the files written."""
    device = resolve_device(cfg.device)
    out = output_path(cfg)
    module, config = load_module(
        cfg.ckpt, map_location=device, trust=check_trust(cfg.trust), model_config=cfg.model_config
    )
    use_ema(module, cfg.ema)
    model_name = str(config.get("model", {}).get("_target_", type(module).__name__))
    if cfg.interpolate:
        method = cfg.method
        if method == "auto":
            method = default_methods(module.prior)[-1]
        check_method(method, module.prior)
        z, labels = sample_inputs(module, 2 * cfg.pairs, cfg.seed, cfg.truncation, cfg.label)
        path_z = interpolate(z[: cfg.pairs], z[cfg.pairs :], cfg.steps, method)  # (P, T, D)
        if labels is not None:  # one class along each row
            labels = labels[: cfg.pairs].repeat_interleave(cfg.steps)
        images = generate_images(
            module, path_z.reshape(-1, path_z.shape[-1]), labels, cfg.batch_size
        )
        grid = write_grid(images, cfg.steps, cfg.padding, out)
        log.info(
            "Wrote %d %s interpolation(s) of %d steps (%dx%d) from %s to %s",
            cfg.pairs,
            method,
            cfg.steps,
            grid.shape[2],
            grid.shape[1],
            model_name,
            out,
        )
        return [out]

    z, labels = sample_inputs(module, cfg.n, cfg.seed, cfg.truncation, cfg.label)
    images = generate_images(module, z, labels, cfg.batch_size)
    if cfg.format == "folder":
        folder = out
        digits = max(6, len(str(cfg.n - 1)))
        written = []
        for index, image in enumerate(images):
            path = folder / f"{index:0{digits}d}.png"
            save_image(image, path)
            written.append(path)
        if labels is not None:  # which class each file was asked to be, for external scorers
            (folder / "labels.csv").write_text(
                "file,label\n"
                + "".join(f"{p.name},{int(y)}\n" for p, y in zip(written, labels, strict=True))
            )
        log.info(
            "Wrote %d images of %dx%d from %s to %s/",
            cfg.n,
            images.shape[3],
            images.shape[2],
            model_name,
            folder,
        )
        return written
    grid = write_grid(images, cfg.nrow or int(math.ceil(math.sqrt(cfg.n))), cfg.padding, out)
    log.info(
        "Wrote a grid of %d samples (%dx%d px) from %s to %s",
        cfg.n,
        grid.shape[2],
        grid.shape[1],
        model_name,
        out,
    )
    return [out]


@hydra_cli("generate")
def main(cfg: DictConfig) -> None:
    """``gan-generate``: check the arguments, generate, write."""
    run(check_config(cfg))


if __name__ == "__main__":
    sys.exit(main())
