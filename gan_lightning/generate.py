"""Sample images from a trained checkpoint: ``python -m gan_lightning.generate ckpt=<path>``.

Also installed as ``gan-generate``. ``key=value`` arguments, like ``train.py``:

    gan-generate ckpt=logs/train/runs/<date>/checkpoints/last.ckpt n=64 out=samples.png
    gan-generate ckpt=... n=10000 format=folder out=fake_images/   # for external FID tools
    gan-generate ckpt=... truncation=1.0 seed=7                    # truncation trick
    gan-generate ckpt=... interpolate=true pairs=4 steps=12 out=interp.png

Works for every model of the project (GAN, DCGAN, VAE): the model is rebuilt from the config
saved in the checkpoint, so neither the training data nor the run directory is needed.
``device=auto`` uses a GPU when there is one.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torchvision.utils import make_grid, save_image

from gan_lightning.checkpoints import load_module
from gan_lightning.errors import ConfigError
from gan_lightning.utils.latents import check_method, default_methods, interpolate, truncate_
from gan_lightning.utils.pixels import to_unit

log = logging.getLogger(__name__)

FORMATS = ("grid", "folder")


@dataclass
class GenerateConfig:
    ckpt: str | None = None  # a .ckpt written by a gan-lightning run (required)
    n: int = 64  # images (grid/folder)
    out: str | None = None  # samples.png (grid, interpolate) or samples/ (folder)
    format: str = "grid"  # grid: one PNG; folder: one PNG per image, 000000.png ...
    nrow: int | None = None  # grid columns (default: a square grid)
    padding: int = 2  # grid padding in pixels
    seed: int | None = 0  # latents are drawn on the CPU with this seed (null: random)
    truncation: float | None = None  # redraw |z_i| > truncation (normal prior only)
    interpolate: bool = False  # rows of latent interpolations instead of samples
    pairs: int = 1  # interpolate: rows (latent pairs); 1 = one strip
    steps: int = 10  # interpolate: images per row, both ends included
    method: str = "auto"  # interpolate: auto (spherical for a normal prior), linear, spherical
    batch_size: int = 256  # images per generator call (memory bound for large n)
    device: str = "auto"  # auto, cpu, cuda, cuda:1, ...


USAGE = """usage: python -m gan_lightning.generate ckpt=<path.ckpt> [key=value ...]

  ckpt=PATH         checkpoint of a gan-lightning run (required)
  n=64              number of images
  out=PATH          output: a PNG (format=grid, default samples.png) or a folder (format=folder)
  format=grid       grid | folder (N individual PNGs, for external FID tools)
  nrow=null         grid columns (default: square)     padding=2   grid padding in pixels
  seed=0            seed of the latents (null: random)
  truncation=null   redraw latent coordinates with |z| > truncation (normal prior only)
  interpolate=false rows of latent interpolations: pairs=1 rows of steps=10 images,
                    method=auto (spherical for a normal prior) | linear | spherical
  batch_size=256    images per generator call
  device=auto       auto | cpu | cuda | cuda:N
"""


def parse_args(argv: list[str]) -> GenerateConfig:
    """``key=value`` arguments -> a checked :class:`GenerateConfig`."""
    bad = [a for a in argv if "=" not in a or a.startswith("-")]
    if bad:
        raise ConfigError(f"arguments are key=value pairs; got {bad}.\n\n{USAGE}")
    schema = OmegaConf.structured(GenerateConfig)
    try:
        merged = OmegaConf.merge(schema, OmegaConf.from_dotlist(argv))
    except OmegaConfBaseException as err:
        first = str(err).splitlines()[0]
        raise ConfigError(f"{first}\n\n{USAGE}") from err
    cfg: GenerateConfig = OmegaConf.to_object(merged)
    if not cfg.ckpt:
        raise ConfigError(f"ckpt=<path to a .ckpt> is required.\n\n{USAGE}")
    if cfg.format not in FORMATS:
        raise ConfigError(f"format={cfg.format!r} is not known; choose one of {list(FORMATS)}.")
    if cfg.n < 1 or cfg.batch_size < 1 or cfg.pairs < 1 or cfg.padding < 0:
        raise ConfigError("n, batch_size and pairs must be >= 1 and padding >= 0.")
    if cfg.nrow is not None and cfg.nrow < 1:
        raise ConfigError(f"nrow must be >= 1 (or null for a square grid); got {cfg.nrow}.")
    if cfg.interpolate and cfg.format == "folder":
        raise ConfigError("interpolate=true writes one strip image; use format=grid.")
    return cfg


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(
            f"device={device!r} is not a torch device (auto, cpu, cuda, cuda:N)."
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device} but no CUDA GPU is available; use device=cpu.")
    return resolved


def sample_latents(module: Any, n: int, seed: int | None, truncation: float | None) -> torch.Tensor:
    """(n, latent_dim) latents from the model's prior, drawn on the CPU so a seed gives the
    same images on every device."""
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    z = module.sample_latent(n, generator, device="cpu")
    if truncation is not None:
        truncate_(z, float(truncation), module.prior, generator)
    return z


def generate_images(module: Any, z: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Images in [0, 1] on the CPU, (N, C, H, W), generated ``batch_size`` at a time."""
    chunks = []
    for start in range(0, z.shape[0], batch_size):
        images = module.generate(z[start : start + batch_size])
        chunks.append(to_unit(images, module.pixel_range).cpu())
    return torch.cat(chunks)


def run(cfg: GenerateConfig) -> list[Path]:
    """Generate and write; returns the files written."""
    device = resolve_device(cfg.device)
    module, config = load_module(cfg.ckpt, map_location=device)
    model_name = str(config.get("model", {}).get("_target_", type(module).__name__))
    if cfg.interpolate:
        method = cfg.method
        if method == "auto":
            method = default_methods(module.prior)[-1]
        check_method(method, module.prior)
        z = sample_latents(module, 2 * cfg.pairs, cfg.seed, cfg.truncation)
        path_z = interpolate(z[: cfg.pairs], z[cfg.pairs :], cfg.steps, method)  # (P, T, D)
        images = generate_images(module, path_z.reshape(-1, path_z.shape[-1]), cfg.batch_size)
        grid = make_grid(images, nrow=cfg.steps, padding=cfg.padding)
        out = Path(cfg.out or "interpolation.png")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, out)
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

    z = sample_latents(module, cfg.n, cfg.seed, cfg.truncation)
    images = generate_images(module, z, cfg.batch_size)
    if cfg.format == "folder":
        folder = Path(cfg.out or "samples")
        folder.mkdir(parents=True, exist_ok=True)
        digits = max(6, len(str(cfg.n - 1)))
        written = []
        for index, image in enumerate(images):
            path = folder / f"{index:0{digits}d}.png"
            save_image(image, path)
            written.append(path)
        log.info(
            "Wrote %d images of %dx%d from %s to %s/",
            cfg.n,
            images.shape[3],
            images.shape[2],
            model_name,
            folder,
        )
        return written
    nrow = cfg.nrow or int(math.ceil(math.sqrt(cfg.n)))
    grid = make_grid(images, nrow=nrow, padding=cfg.padding)
    out = Path(cfg.out or "samples.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, out)
    log.info(
        "Wrote a grid of %d samples (%dx%d px) from %s to %s",
        cfg.n,
        grid.shape[2],
        grid.shape[1],
        model_name,
        out,
    )
    return [out]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if any(a in ("-h", "--help", "help") for a in argv):
        print(USAGE)
        return 0
    try:
        run(parse_args(argv))
    except ConfigError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
