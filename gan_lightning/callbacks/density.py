"""Figure 1 of the GAN paper for 1-D data, every N steps, and an animated GIF of the run.

Goodfellow et al.'s Figure 1 draws, over x: the data density p_data (green), the generator's
density p_g (red) and the discriminator's output D(x) (blue), plus the mapping x = G(z) from
the noise domain below. Seed 001 (section 3.1, Fig. 2) reproduces it on N(mu, sigma) targets
and shows training animations; :class:`DensityPlot` draws the same picture during training.

At the end of a good run the red histogram sits on the green curve and D(x) is flat at 1/2
(Proposition 1: D*(x) = p_data / (p_data + p_g)).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from gan_lightning.callbacks.base import Picture, PictureCallback, Skip, frames
from gan_lightning.errors import ConfigError
from gan_lightning.utils.images import figure_to_tensor, log_animation
from gan_lightning.utils.modes import eval_mode

log = logging.getLogger(__name__)

DATA_COLOR, GEN_COLOR, D_COLOR = "#2ca02c", "#d62728", "#1f77b4"


class DensityPlot(PictureCallback):
    """Save Figure 1 as ``<dirpath>/step_<batches>.png`` at step 0, every ``every_n_steps`` real
    batches and at the end, and assemble the frames into ``<dirpath>/<gif_name>``.

    Needs 1-D data (``image_shape == [1]``) and a module with the sampling contract and a
    ``discriminator`` returning logits (the GAN module). The data density comes from the
    DataModule's ``density(x)`` when it has one (the Gaussian toy), else from a histogram of
    its validation samples. The x axis is fixed at the first frame (data and generator
    ranges, padded) unless ``x_range`` is given, so frames line up in the animation.
    Rank zero only.
    """

    config_key = "density"
    name_parts = ("step",)

    def __init__(
        self,
        dirpath: str = "density",
        every_n_steps: int = 100,
        num_samples: int = 10000,
        bins: int = 60,
        x_range: tuple[float, float] | None = None,
        gif_name: str | None = "training.gif",
        frame_ms: int = 120,
        mapping_lines: int = 24,
        seed: int = 1234,
    ) -> None:
        super().__init__(dirpath, every_n_epochs=0, every_n_steps=every_n_steps)
        if int(every_n_steps) < 1 or int(num_samples) < 2 or int(bins) < 2:
            raise ConfigError(
                "callbacks.density: every_n_steps >= 1, num_samples >= 2 and bins >= 2 required."
            )
        if x_range is not None and not float(x_range[0]) < float(x_range[1]):
            raise ConfigError(f"callbacks.density.x_range={list(x_range)} must be [low, high].")
        self.num_samples = int(num_samples)
        self.bins = int(bins)
        self.x_range = (float(x_range[0]), float(x_range[1])) if x_range is not None else None
        self.gif_name = gif_name
        self.frame_ms = int(frame_ms)
        self.mapping_lines = int(mapping_lines)
        self.seed = int(seed)
        self.fixed_z: torch.Tensor | None = None
        self.y_max: float | None = None

    # ------------------------------------------------------------------ data
    def _latents(self, module: Any) -> torch.Tensor:
        if self.fixed_z is None or self.fixed_z.shape[1] != module.latent_dim:
            generator = torch.Generator().manual_seed(self.seed)
            self.fixed_z = module.sample_latent(self.num_samples, generator, device="cpu")
        return self.fixed_z

    @staticmethod
    def _real_samples(datamodule: Any) -> np.ndarray | None:
        val = getattr(datamodule, "val_set", None)
        images = getattr(val, "images", None)
        return None if images is None else images.float().flatten().cpu().numpy()

    @torch.no_grad()
    def _discriminate(self, module: Any, x: np.ndarray) -> np.ndarray:
        discriminator = getattr(module, "discriminator", None)
        if discriminator is None:
            raise ConfigError(
                "callbacks.density draws D(x) and needs a GAN module (with a discriminator); "
                "disable it with callbacks.density=null."
            )
        if getattr(discriminator, "pack", 1) != 1 or getattr(discriminator, "minibatch_std", 0):
            raise ConfigError(
                "callbacks.density draws D(x) point by point, but this discriminator judges "
                "groups of points (model.discriminator.pack or minibatch_std); D(x) is not drawn."
            )
        with eval_mode(discriminator):
            grid = torch.as_tensor(x, dtype=torch.float32, device=module.device).view(-1, 1)
            return torch.sigmoid(discriminator(grid)).float().cpu().view(-1).numpy()

    def measure(self, module: Any, datamodule: Any = None) -> dict[str, Any]:
        """Everything a frame shows, as numpy arrays (also handy for tests and notebooks)."""
        z = self._latents(module)
        fake = module.generate(z).float().cpu()
        if fake.dim() > 2 or (fake.dim() == 2 and fake.shape[1] != 1):
            raise ConfigError(
                f"callbacks.density needs 1-D data (data.image_shape=[1]); the generator makes "
                f"samples of shape {list(fake.shape[1:])}. Disable it with callbacks.density=null."
            )
        fake = fake.view(-1).numpy()
        real = self._real_samples(datamodule)
        if self.x_range is None:
            pool = [np.quantile(fake, [0.002, 0.998])]
            if real is not None:
                pool.append(np.quantile(real, [0.0, 1.0]))
            if hasattr(datamodule, "mu") and hasattr(datamodule, "sigma"):
                pool.append(
                    np.array(
                        [datamodule.mu - 4 * datamodule.sigma, datamodule.mu + 4 * datamodule.sigma]
                    )
                )
            low, high = min(p[0] for p in pool), max(p[1] for p in pool)
            pad = 0.1 * max(high - low, 1e-3)
            self.x_range = (float(low - pad), float(high + pad))
        low, high = self.x_range
        x = np.linspace(low, high, 400)
        if hasattr(datamodule, "density"):
            data_density = datamodule.density(torch.from_numpy(x)).numpy()
        elif real is not None:
            counts, edges = np.histogram(real, bins=self.bins, range=(low, high))
            data_density = np.interp(
                x, 0.5 * (edges[1:] + edges[:-1]), counts / (len(real) * (edges[1] - edges[0]))
            )
        else:
            data_density = None
        counts, edges = np.histogram(fake, bins=self.bins, range=(low, high))
        gen_density = counts / (len(fake) * (edges[1] - edges[0]))
        d_of_x = self._discriminate(module, x)
        d_on_data = (
            float(np.sum(d_of_x * data_density) / max(np.sum(data_density), 1e-12))
            if data_density is not None
            else float("nan")
        )
        return {
            "x": x,
            "data_density": data_density,
            "gen_edges": edges,
            "gen_density": gen_density,
            "d_of_x": d_of_x,
            "d_on_data": d_on_data,  # D averaged over p_data: 1/2 at the equilibrium
            "fake": fake,
            "fake_mean": float(fake.mean()),
            "fake_std": float(fake.std()),
            "z": z.view(-1).numpy() if z.shape[1] == 1 else None,
        }

    # ------------------------------------------------------------------ drawing
    def render(self, module: Any, datamodule: Any = None, step: int = 0) -> torch.Tensor:
        """Figure 1 as a float (3, H, W) tensor in [0, 1]."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        m = self.measure(module, datamodule)
        low, high = self.x_range
        has_map = m["z"] is not None and self.mapping_lines > 0
        fig = Figure(figsize=(7.0, 4.6 if has_map else 3.8), dpi=100)
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(
            2 if has_map else 1, 1, height_ratios=[4, 1] if has_map else [1], hspace=0.05
        )
        ax = fig.add_subplot(grid[0])
        if m["data_density"] is not None:
            ax.plot(m["x"], m["data_density"], color=DATA_COLOR, lw=2, label="data $p_{data}$")
        ax.stairs(
            m["gen_density"],
            m["gen_edges"],
            color=GEN_COLOR,
            lw=1.5,
            fill=False,
            label="generator $p_g$",
        )
        peak = (
            float(np.max(m["data_density"]))
            if m["data_density"] is not None
            else float(m["gen_density"].max())
        )
        if self.y_max is None:
            self.y_max = 1.5 * max(peak, 1e-6)
        ax.set_ylim(0, self.y_max)
        ax.set_xlim(low, high)
        ax.set_ylabel("density")
        twin = ax.twinx()
        twin.plot(m["x"], m["d_of_x"], color=D_COLOR, lw=1.5, ls="--", label="D(x)")
        twin.axhline(0.5, color=D_COLOR, lw=0.8, ls=":", alpha=0.6)
        twin.text(high, 0.51, "D = 1/2 ", color=D_COLOR, fontsize=7, ha="right", va="bottom")
        twin.set_ylim(0, 1.05)
        twin.set_ylabel("D(x)", color=D_COLOR)
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False)
        ax.set_title(
            f"step {step}   G: mean {m['fake_mean']:.2f}, std {m['fake_std']:.2f}   "
            f"E_data[D(x)] = {m['d_on_data']:.2f}",
            fontsize=9,
        )
        if has_map:
            ax.tick_params(labelbottom=False)
            lower = fig.add_subplot(grid[1], sharex=ax)
            z, fake = m["z"], m["fake"]
            picks = np.argsort(z)[np.linspace(0, len(z) - 1, self.mapping_lines).astype(int)]
            z_lo, z_hi = float(z.min()), float(z.max())
            z_pos = low + (z[picks] - z_lo) / max(z_hi - z_lo, 1e-12) * (high - low)
            for zp, xp in zip(z_pos, np.clip(fake[picks], low, high), strict=True):
                lower.annotate(
                    "",
                    xy=(xp, 1),
                    xytext=(zp, 0),
                    arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 0.6},
                )
            lower.set_ylim(0, 1)
            lower.set_yticks([0, 1], ["z", "x"])
            lower.set_xlabel("x   (lower line: noise z, rescaled; arrows: x = G(z))")
        else:
            ax.set_xlabel("x")
        return figure_to_tensor(fig)

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: pl.Trainer, pl_module: Any, stage: str) -> None:
        """Refuse image data before any training (the figure is for 1-D samples only)."""
        shape = getattr(getattr(trainer, "datamodule", None), "image_shape", None)
        if shape is not None and tuple(shape) != (1,):
            raise ConfigError(
                f"callbacks.density draws 1-D densities but data.image_shape={list(shape)}; "
                "use it with data=gaussian, or disable it with callbacks.density=null."
            )

    def pictures(self, trainer: pl.Trainer, module: Any) -> list[Picture]:
        step = int(module.batches_seen)
        try:
            image = self.render(module, getattr(trainer, "datamodule", None), step)
        except ConfigError as err:  # e.g. a VAE: no discriminator to draw D(x) from
            raise Skip(str(err)) from err
        return [Picture("density/figure1", image)]

    @rank_zero_only
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self.write_gif(trainer)

    @rank_zero_only
    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.write_gif(trainer)  # an interrupted run still gets its animation so far

    def write_gif(self, trainer: Any = None) -> Path | None:
        """Assemble the frames on disk into an animated GIF (the last frame held 1.5 s), on disk
        and, through :func:`log_animation`, in W&B."""
        found = frames(self.dirpath, by="step", pattern="step_*.png")
        if not self.gif_name or not found:
            return None
        from PIL import Image

        images = []
        for _, path in found:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        gif = log_animation(
            trainer,
            "density/animation",
            images,
            self.dirpath / self.gif_name,
            frame_ms=self.frame_ms,
            last_frame_ms=max(self.frame_ms, 1500),
        )
        log.info("Saved %d-frame density animation %s", len(images), gif)
        return gif

    def state_dict(self) -> dict[str, Any]:
        return {"fixed_z": self.fixed_z, "x_range": self.x_range, "y_max": self.y_max}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fixed_z = state_dict.get("fixed_z")
        self.x_range = state_dict.get("x_range", self.x_range)
        self.y_max = state_dict.get("y_max", self.y_max)


__all__ = ["DensityPlot"]
