"""Training curves as pictures: losses, train vs validation, and sample quality over epochs.

Three figures (matplotlib), saved in the run directory and sent to the loggers as images:

* ``losses.png``: D loss, G loss and their sum per logged step, with the epoch means on top
  (seed 002, Figures 4 and 7). A model without ``d_loss``/``g_loss`` (the VAE) gets its
  ``train/*loss*`` metrics instead.
* ``train_val.png``: every metric logged for both training and validation, one panel each,
  train vs val per epoch (seed 002's Figure 13 for the VAE: loss, reconstruction, KL).
* ``fid_kid.png``: every ``val/fid*``, ``val/kid_mean*``, ``val/is*`` (with their ``_std``
  bands) and ``val/classes_covered*`` metric over epochs, and precision, recall, density,
  coverage and intra-class FID where they were scored, whoever logged them (the metrics
  callback does).

Values are gathered from ``trainer.callback_metrics`` as the detached tensors Lightning
already holds, every ``log_every_n_steps`` batches and at epoch ends; nothing is moved to
the host until a figure is drawn, so the training loop gets no extra synchronisation.
"""

from __future__ import annotations

import fnmatch
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from gan_lightning.callbacks.base import Picture, PictureCallback, Skip
from gan_lightning.errors import ConfigError
from gan_lightning.utils.images import figure_to_tensor

log = logging.getLogger(__name__)

Series = list[tuple[int, torch.Tensor]]

GAN_LOSSES = ("train/d_loss", "train/g_loss")
QUALITY_PATTERNS = (
    "val/fid*",
    "val/intra_fid*",
    "val/kid_mean*",
    "val/is*",
    "val/classes_covered*",
    "val/precision*",
    "val/recall*",
    "val/density*",
    "val/coverage*",
)
#: A panel's spread, drawn as a band: val/kid_mean_x -> val/kid_std_x, val/is_x -> val/is_std_x.
STD_OF = (("kid_mean", "kid_std"), ("val/is", "val/is_std"))


def _scalar(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.numel() == 1


def _values(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """One host transfer per series: (x, y) arrays."""
    if not series:
        return np.zeros(0), np.zeros(0)
    xs = np.asarray([x for x, _ in series], dtype=float)
    ys = torch.stack([v.detach().reshape(()).float() for _, v in series]).cpu().numpy()
    return xs, ys


def new_figure(panels: int, figsize: Sequence[float], dpi: int, cols: int = 3) -> tuple[Any, list]:
    """A Figure (no pyplot global state) with ``panels`` axes, ``cols`` per row."""
    from matplotlib.figure import Figure

    cols = 2 if panels == 4 else max(1, min(cols, panels))
    rows = (panels + cols - 1) // cols
    width, height = figsize
    fig = Figure(figsize=(width * cols, height * rows), dpi=dpi, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def _epoch_axis(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


class TrainingCurves(PictureCallback):
    """Draw loss, train-vs-val and FID/KID curves at the end of training (and every n epochs).

    Args:
        dirpath: where ``losses.png``, ``train_val.png`` and ``fid_kid.png`` go.
        every_n_epochs: also redraw every n epochs, overwriting the files (0: only at the end).
        step_metrics: per-step series for ``losses.png`` (without ``_step``); ``None``:
            ``train/d_loss`` and ``train/g_loss`` (plus their sum) if logged, else every
            ``train/*loss*`` metric.
        quality_metrics: fnmatch patterns of the per-evaluation metrics for ``fid_kid.png``.
        figsize / dpi: size of one panel in inches, and resolution.
    """

    def __init__(
        self,
        dirpath: str = "curves",
        every_n_epochs: int = 0,
        step_metrics: Sequence[str] | None = None,
        quality_metrics: Sequence[str] = QUALITY_PATTERNS,
        figsize: Sequence[float] = (6.0, 4.0),
        dpi: int = 100,
    ) -> None:
        super().__init__(dirpath, every_n_epochs=every_n_epochs, at_train_end=True)
        if dpi < 10 or len(figsize) != 2:
            raise ConfigError(
                "callbacks.curves: dpi >= 10 and figsize [width, height] required; got "
                f"{dpi}, {list(figsize)}."
            )
        self.step_metrics = list(step_metrics) if step_metrics else None
        self.quality_metrics = list(quality_metrics)
        self.figsize = (float(figsize[0]), float(figsize[1]))
        self.dpi = int(dpi)
        self.steps: dict[str, Series] = defaultdict(list)  # name -> [(batches done, value)]
        self.epochs: dict[str, Series] = defaultdict(list)  # name -> [(epoch, value)]
        self.epoch_ends: dict[int, int] = {}  # epoch -> batches done at its end
        self._seen: dict[str, Any] = {}  # name -> the tensor object last recorded

    config_key = "curves"
    name_parts = ()

    # ------------------------------------------------------------------ collection
    def _step_names(self, metrics: dict[str, Any]) -> list[str]:
        if self.step_metrics:
            return self.step_metrics
        if all(f"{m}_step" in metrics or m in metrics for m in GAN_LOSSES):
            return list(GAN_LOSSES)
        names = {
            k[: -len("_step")] for k in metrics if k.startswith("train/") and k.endswith("_step")
        }
        return sorted(n for n in names if "loss" in n)

    @rank_zero_only
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        done = int(pl_module.batches_seen)  # what Lightning logs this batch's scalars at, + 1
        if done % max(1, trainer.log_every_n_steps) != 0:
            return
        metrics = trainer.callback_metrics
        for name in self._step_names(metrics):
            value = metrics.get(f"{name}_step", metrics.get(name))
            # The same object as last time: not logged since (e.g. G skipped under d_steps=k).
            if _scalar(value) and self._seen.get(f"step:{name}") is not value:
                self._seen[f"step:{name}"] = value
                self.steps[name].append((done, value.detach()))

    def _record_epoch(self, trainer: pl.Trainer, epoch: int, train_too: bool) -> None:
        for key, value in trainer.callback_metrics.items():
            if not _scalar(value) or not key.startswith(("train/", "val/")):
                continue
            if key.startswith("train/"):
                if not train_too or key.endswith("_step"):
                    continue
                name = key[: -len("_epoch")] if key.endswith("_epoch") else key
                if key == name and f"{key}_epoch" in trainer.callback_metrics:
                    continue  # "train/x" duplicates "train/x_epoch" at epoch end
            elif self._seen.get(key) is value:
                continue  # not recomputed since it was recorded: no new evaluation
            self._seen[key] = value
            series = self.epochs[name if key.startswith("train/") else key]
            if series and series[-1][0] == epoch:
                series[-1] = (epoch, value.detach())
            else:
                series.append((epoch, value.detach()))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # A callback after this one may have logged (e.g. FID) in on_train_epoch_end.
        if self._last_epoch is not None and trainer.is_global_zero:
            self._record_epoch(trainer, self._last_epoch, train_too=False)

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.epoch_ends[int(trainer.current_epoch)] = int(pl_module.batches_seen)
        self._record_epoch(trainer, int(trainer.current_epoch), train_too=True)
        super().on_train_epoch_end(trainer, pl_module)

    @rank_zero_only
    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # Always redrawn: scores logged after this callback's epoch-end hook belong in it.
        if self._last_epoch is not None:
            self._record_epoch(trainer, self._last_epoch, train_too=False)
        self.draw(trainer, pl_module)

    # ------------------------------------------------------------------ figures
    def figures(self) -> dict[str, Any]:
        """``{name: matplotlib Figure}`` for every figure there is data for."""
        candidates = {
            "losses": self.loss_figure(),
            "train_val": self.train_val_figure(),
            "fid_kid": self.quality_figure(),
        }
        return {name: fig for name, fig in candidates.items() if fig is not None}

    def pictures(self, trainer: pl.Trainer, module: Any) -> list[Picture]:
        figures = self.figures()
        if not figures:
            raise Skip("no metrics logged yet")
        return [
            Picture(f"curves/{name}", figure_to_tensor(fig), tag=name, caption=name)
            for name, fig in figures.items()
        ]

    def loss_figure(self) -> Any:
        names = [n for n in (self.step_metrics or self.steps) if self.steps.get(n)]
        if not self.step_metrics and all(self.steps.get(n) for n in GAN_LOSSES):
            names = list(GAN_LOSSES)
        if not names:
            return None
        fig, (ax,) = new_figure(1, self.figsize, self.dpi)
        curves = {n: _values(self.steps[n]) for n in names}
        if set(GAN_LOSSES) <= set(curves):
            (xd, yd), (xg, yg) = curves[GAN_LOSSES[0]], curves[GAN_LOSSES[1]]
            common, di, gi = np.intersect1d(xd, xg, return_indices=True)
            curves["D + G"] = (common, yd[di] + yg[gi])
        for index, (name, (xs, ys)) in enumerate(curves.items()):
            label = name.removeprefix("train/")
            color = f"C{index}"
            ax.plot(xs, ys, color=color, lw=0.8, alpha=0.45)
            means = self._epoch_means(name, curves)
            if means is not None:
                ax.plot(*means, color=color, lw=2, marker="o", ms=3, label=f"{label} (epoch mean)")
            else:
                ax.plot([], [], color=color, lw=2, label=label)
        ax.set_xlabel("real batches")
        ax.set_ylabel("loss")
        ax.set_title("Training losses (thin: logged steps)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        return fig

    def _epoch_means(self, name: str, curves: dict) -> tuple[np.ndarray, np.ndarray] | None:
        if name == "D + G":
            parts = [self._epoch_means(n, curves) for n in GAN_LOSSES]
            if any(p is None for p in parts):
                return None
            (xd, yd), (xg, yg) = parts
            common, di, gi = np.intersect1d(xd, xg, return_indices=True)
            return common, yd[di] + yg[gi]
        epochs, ys = _values(self.epochs.get(name, []))
        keep = [i for i, e in enumerate(epochs) if int(e) in self.epoch_ends]
        if not keep:
            return None
        xs = np.asarray([self.epoch_ends[int(epochs[i])] for i in keep], dtype=float)
        return xs, ys[keep]

    def train_val_figure(self) -> Any:
        bases = sorted(
            n.removeprefix("train/")
            for n in self.epochs
            if n.startswith("train/") and f"val/{n.removeprefix('train/')}" in self.epochs
        )
        if not bases:
            return None
        fig, axes = new_figure(len(bases), self.figsize, self.dpi)
        for ax, base in zip(axes, bases, strict=True):
            for split, style in (("train", "-o"), ("val", "--s")):
                xs, ys = _values(self.epochs[f"{split}/{base}"])
                ax.plot(xs, ys, style, ms=3, label=split)
            ax.set_title(base)
            _epoch_axis(ax)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        return fig

    def quality_figure(self) -> Any:
        names = sorted(
            n
            for n in self.epochs
            if "_std" not in n and any(fnmatch.fnmatch(n, p) for p in self.quality_metrics)
        )
        if not names:
            return None
        fig, axes = new_figure(len(names), self.figsize, self.dpi)
        for ax, name in zip(axes, names, strict=True):
            xs, ys = _values(self.epochs[name])
            ax.plot(xs, ys, "-o", ms=4, color="C3")
            std_name = next((name.replace(a, b, 1) for a, b in STD_OF if a in name), name)
            if std_name != name and self.epochs.get(std_name):
                sx, sy = _values(self.epochs[std_name])
                if np.array_equal(sx, xs):
                    ax.fill_between(xs, ys - sy, ys + sy, color="C3", alpha=0.2, label="± std")
                    ax.legend(fontsize="small")
            ax.set_title(name.removeprefix("val/"))
            _epoch_axis(ax)
            ax.grid(alpha=0.3)
        fig.suptitle(
            "Sample quality over epochs (FID, KID: lower is better; IS, classes, precision, "
            "recall, density, coverage: higher)"
        )
        return fig
