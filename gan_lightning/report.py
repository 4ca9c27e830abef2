"""The sweep report: one row per job of a multirun, as CSV, Markdown and a plot.

When a multirun ends, :class:`SweepReport` (a Hydra callback, on for every multirun through
``conf/hydra/default.yaml``) writes into the sweep directory:

* ``summary.csv``: every job with its status, overrides, the final and best value of every
  metric it logged, real batches, wall time, run directory and W&B run id;
* ``summary.md``: the same jobs as a Markdown table a user can paste (the overrides that vary
  between jobs as columns, the ones they share above it; FID/KID/IS, or a VAE's losses);
  it is also printed at the end of the sweep;
* ``summary.png``: the jobs' FID (and KID, IS) curves over real batches, side by side.

``gan-report <sweep dir>`` (or ``python -m gan_lightning.report sweep_dir=<dir>``) rebuilds
the three files later, e.g. for a sweep that stopped early or is still running.

Where the numbers come from, per job directory (every directory under the sweep directory
with a ``.hydra/overrides.yaml``):

* ``.hydra/overrides.yaml`` and ``.hydra/hydra.yaml``: the job's overrides and number, written
  by Hydra when the job starts (so a job that failed early still gets its row);
* ``results.json``: written by :class:`~gan_lightning.callbacks.RunResults` during and at the
  end of training: scores and their history, real batches, wall time, W&B run id. It does
  not depend on the logger (W&B, CSV, TensorBoard or none).
"""

from __future__ import annotations

import csv
import fnmatch
import json
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.protocol import describe, differences
from gan_lightning.runtime.cli import hydra_cli, hydra_quote
from gan_lightning.runtime.config_checks import app_args
from gan_lightning.runtime.filesystem import check_writable_dir

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
#: The metrics a report leads with, in this order, and their column names: sample quality
#: when it was scored (precision/recall/density/coverage and intra-class FID where the jobs
#: have them), else a VAE's (or an unscored GAN's) validation losses.
QUALITY = (
    ("val/fid_*", "FID"),
    ("val/intra_fid_*", "intra-FID"),
    ("val/kid_mean_*", "KID"),
    ("val/is_*", "IS"),
    ("val/precision_*", "precision"),
    ("val/recall_*", "recall"),
    ("val/density_*", "density"),
    ("val/coverage_*", "coverage"),
)
LOSSES = (("val/loss", "loss"), ("val/recon", "recon"), ("val/kl", "KL"), ("val/*loss*", None))


@dataclass
class Job:
    """One job directory of a sweep."""

    num: int
    dir: Path
    overrides: list[str]
    results: dict[str, Any] | None = None
    values: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.values = {}
        for override in self.overrides:
            key, sep, value = override.partition("=")
            self.values[key.lstrip("+")] = value if sep else ""

    @property
    def status(self) -> str:
        return self.results.get("status", "?") if self.results else "no results"

    def final(self, metric: str) -> float | None:
        return (self.results or {}).get("final", {}).get(metric)

    def best(self, metric: str) -> float | None:
        return (self.results or {}).get("best", {}).get(metric)

    def curve(self, metric: str) -> tuple[list[int], list[float]]:
        points = [
            (entry["step"], entry["metrics"][metric])
            for entry in (self.results or {}).get("history", [])
            if metric in entry["metrics"]
        ]
        return [p[0] for p in points], [p[1] for p in points]

    @property
    def protocol(self) -> dict[str, Any] | None:
        """How the job's scores were computed (``results.json``'s ``protocol``)."""
        return (self.results or {}).get("protocol")

    @property
    def wandb_run_id(self) -> str | None:
        return ((self.results or {}).get("wandb") or {}).get("run_id")


@dataclass
class Report:
    """What :func:`write_report` wrote, and the Markdown table it printed."""

    sweep_dir: Path
    jobs: list[Job]
    csv: Path
    markdown_path: Path
    plot: Path | None
    markdown: str


# ---------------------------------------------------------------------------- reading
def _job_num(job_dir: Path, results: dict[str, Any] | None, fallback: int) -> int:
    hydra_yaml = job_dir / ".hydra" / "hydra.yaml"
    if hydra_yaml.is_file():
        num = OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.job.num", default=None)
        if isinstance(num, int):
            return num
    num = ((results or {}).get("hydra") or {}).get("job_num")
    return int(num) if isinstance(num, int) else fallback


def find_jobs(sweep_dir: str | Path) -> list[Job]:
    """Every job directory under ``sweep_dir``, in job order."""
    sweep_dir = Path(sweep_dir)
    found = sorted(p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml"))
    jobs = []
    for index, job_dir in enumerate(found):
        overrides = [str(o) for o in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")]
        results_path = job_dir / RESULTS_FILE
        results = json.loads(results_path.read_text()) if results_path.is_file() else None
        jobs.append(Job(_job_num(job_dir, results, index), job_dir, overrides, results))
    return sorted(jobs, key=lambda job: (job.num, str(job.dir)))


def split_overrides(jobs: Sequence[Job]) -> tuple[list[str], list[str]]:
    """(keys whose value differs between jobs, in first-seen order; overrides all jobs share)."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job.values if k not in keys]
    varying = [k for k in keys if len({job.values.get(k) for job in jobs}) > 1]
    common = [f"{k}={jobs[0].values[k]}" for k in keys if k not in varying] if jobs else []
    return varying, common


def columns(jobs: Sequence[Job], labels: Mapping[str, str]) -> list[str]:
    """The varying override keys in table order: labelled keys first, in the labels' order
    (e.g. seed 003's "G BN", "D BN"), then the others as first seen."""
    varying, _ = split_overrides(jobs)
    return [k for k in labels if k in varying] + [k for k in varying if k not in labels]


def headline_metrics(jobs: Sequence[Job]) -> list[tuple[str, str]]:
    """``[(metric, column name)]``: FID/KID/IS if any job scored them, else validation losses."""
    names: list[str] = []
    for job in jobs:
        names += [n for n in (job.results or {}).get("final", {}) if n not in names]
    for table in (QUALITY, LOSSES):
        chosen: list[tuple[str, str]] = []
        for pattern, label in table:
            for name in sorted(fnmatch.filter(names, pattern)):
                if "_std" not in name and name not in (c[0] for c in chosen):
                    chosen.append((name, label or name.removeprefix("val/")))
        if chosen:
            labels = [c[1] for c in chosen]
            if len(set(labels)) < len(labels):  # e.g. FID of two extractors: say which
                chosen = [(n, n.removeprefix("val/")) for n, _ in chosen]
            return chosen
    return []


# ---------------------------------------------------------------------------- writing
def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def _value(value: str) -> str:
    """An override value for the Markdown table: floats to 4 significant digits (Optuna's
    ``5.6115164153345e-05`` -> ``5.612e-05``); everything else as given. The CSV keeps all."""
    if any(c in value for c in ".eE") and not value.startswith("["):
        try:
            return f"{float(value):.4g}"
        except ValueError:
            pass
    return value


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{secs} s"


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def csv_rows(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """One dict per job: every key the CSV has (all metrics' final and best values)."""
    varying, _ = split_overrides(jobs)
    metrics: list[str] = []
    for job in jobs:
        results = job.results or {}
        for name in [*results.get("final", {}), *results.get("best", {})]:
            if name not in metrics:
                metrics.append(name)
    rows = []
    for job in jobs:
        results = job.results or {}
        row: dict[str, Any] = {"job": job.num, "status": job.status}
        row["overrides"] = " ".join(job.overrides)
        row.update({key: job.values.get(key, "") for key in varying})
        for name in metrics:
            row[f"{name} (final)"] = job.final(name)
            row[f"{name} (best)"] = job.best(name)
        row["steps"] = results.get("steps")
        row["wall_time_s"] = results.get("wall_time_s")
        row["protocol"] = describe(job.protocol) if job.protocol else None
        row["run_dir"] = str(job.dir.resolve())
        row["wandb_run_id"] = job.wandb_run_id
        rows.append(row)
    return rows


def markdown_table(
    jobs: Sequence[Job], sweep_dir: Path, labels: Mapping[str, str] | None = None
) -> str:
    """The report as Markdown: a title line, the shared overrides, one table row per job."""
    labels = dict(labels or {})
    _, common = split_overrides(jobs)
    varying = columns(jobs, labels)
    metrics = headline_metrics(jobs)
    header = ["job", *(labels.get(k, k) for k in varying)]
    for _, label in metrics:
        header += [f"{label} final", f"{label} best"]
    header += ["steps", "wall time", "status", "run dir", "W&B run"]
    lines = [
        f"Sweep {sweep_dir}: {len(jobs)} jobs.",
        "",
        "Shared overrides: " + (" ".join(f"`{o}`" for o in common) if common else "none") + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for job in jobs:
        results = job.results or {}
        cells = [str(job.num), *(_value(job.values.get(k, "")) for k in varying)]
        for name, _ in metrics:
            cells += [_number(job.final(name)), _number(job.best(name))]
        cells += [
            str(results.get("steps", "-")),
            _duration(results.get("wall_time_s")),
            job.status,
            _relative(job.dir, sweep_dir),
            job.wandb_run_id or "-",
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if metrics:
        names = ", ".join(f"{label} = {name}" for name, label in metrics)
        lines += ["", f"{names}; final = at the last evaluation, best = over the run."]
    protocol = protocol_line(jobs)
    if protocol:
        lines += ["", protocol]
    best = optuna_best(sweep_dir)
    if best:
        lines += ["", best]
    return "\n".join(lines) + "\n"


def protocol_line(jobs: Sequence[Job]) -> str | None:
    """The scores' protocol when the scored jobs share one; otherwise which of its keys differ,
    so numbers that cannot be compared are not compared by mistake."""
    protocols = [job.protocol for job in jobs if job.protocol]
    if not protocols:
        return None
    differ = differences(protocols)
    if not differ:
        return f"Scored on {describe(protocols[0])}."
    return (
        f"Not all scores are comparable: the jobs' scoring protocols differ in {', '.join(differ)} "
        "(results.json: protocol)."
    )


def optuna_best(sweep_dir: Path) -> str | None:
    """One line on the best trial, if the sweep was an Optuna search."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return None
    results = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(results, dict) or "best_value" not in results:
        return None
    params = " ".join(f"`{k}={v}`" for k, v in (results.get("best_params") or {}).items())
    return f"Optuna: best value {_number(results['best_value'])} with {params}."


def plot(jobs: Sequence[Job], path: Path, labels: Mapping[str, str] | None = None) -> Path | None:
    """``summary.png``: one panel per headline metric, one line per job (None: no curves)."""
    from gan_lightning.callbacks.curves import new_figure

    metrics = [m for m in headline_metrics(jobs) if any(job.curve(m[0])[0] for job in jobs)]
    if not metrics:
        return None
    labels = dict(labels or {})
    varying = columns(jobs, labels)
    fig, axes = new_figure(len(metrics), (6.0, 4.0), 100)
    for ax, (name, label) in zip(axes, metrics, strict=True):
        for index, job in enumerate(jobs):
            xs, ys = job.curve(name)
            described = ", ".join(f"{labels.get(k, k)}={job.values.get(k, '')}" for k in varying)
            ax.plot(xs, ys, "-o", ms=3, color=f"C{index % 10}", label=f"{job.num}: {described}")
        ax.set_title(f"{label} ({name})")
        ax.set_xlabel("real batches")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="x-small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def sweep_labels(sweep_dir: Path) -> dict[str, str]:
    """The column names the sweep was configured with (``hydra.callbacks.sweep_report.labels``
    in its ``multirun.yaml``), so a rebuilt report looks like the one the sweep printed."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return {}
    node = OmegaConf.select(OmegaConf.load(path), "hydra.callbacks.sweep_report.labels")
    return {str(k): str(v) for k, v in (node or {}).items()}


def write_report(sweep_dir: str | Path, labels: Mapping[str, str] | None = None) -> Report:
    """Write ``summary.csv``, ``summary.md`` and ``summary.png`` into ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    jobs = find_jobs(sweep_dir)
    labels = sweep_labels(sweep_dir) if labels is None else dict(labels)
    rows = csv_rows(jobs)
    csv_path = sweep_dir / "summary.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["job"])
        writer.writeheader()
        writer.writerows(rows)
    markdown = markdown_table(jobs, sweep_dir, labels)
    md_path = sweep_dir / "summary.md"
    md_path.write_text(markdown)
    png = plot(jobs, sweep_dir / "summary.png", labels)
    return Report(sweep_dir, jobs, csv_path, md_path, png, markdown)


# ---------------------------------------------------------------------------- Hydra callback
class SweepReport(Callback):
    """Write the sweep report when a multirun ends (Hydra ``on_multirun_end``).

    Args:
        labels: column names for override keys, e.g. ``{model.generator.batch_norm: G BN}``;
            labelled keys come first, in this order.
    """

    def __init__(self, labels: Mapping[str, str] | None = None) -> None:
        self.labels = {str(k): str(v) for k, v in (labels or {}).items()}

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            report = write_report(sweep_dir, self.labels)
        except Exception as err:  # noqa: BLE001 - the jobs are done; a report bug must not hide that
            log.error(
                "Could not write the sweep report (%s); rebuild it with: gan-report %s",
                err,
                sweep_dir,
            )
            return
        # Printed, not logged: a table with log prefixes on every line cannot be pasted.
        print(f"\n{report.markdown}\nSweep report: {report.markdown_path}, {report.csv}", end="")
        print(f", {report.plot}" if report.plot else "")


# ---------------------------------------------------------------------------- gan-report
def positional_sweep_dir(args: list[str]) -> list[str]:
    """``gan-report <dir>`` -> ``gan-report sweep_dir=<dir>`` (a first argument without ``=``)."""
    if args and "=" not in args[0] and not args[0].startswith("-"):
        return [f"sweep_dir={hydra_quote(args[0])}", *args[1:]]
    return args


def check_sweep_dir(sweep_dir: Path) -> Path:
    """``sweep_dir`` is a multirun directory (holding job directories), not a single run, a
    job of a sweep, a file or an empty folder; :class:`ConfigError` saying which otherwise."""
    example = "e.g. gan-report logs/train/multiruns/<date>"
    if not sweep_dir.exists():
        raise ConfigError(
            f"sweep_dir={sweep_dir} does not exist; pass a multirun directory, {example}."
        )
    if not sweep_dir.is_dir():
        raise ConfigError(
            f"sweep_dir={sweep_dir} is a file, not a directory; pass a multirun directory, "
            f"{example}."
        )
    if (sweep_dir / ".hydra" / "overrides.yaml").is_file():
        parent = sweep_dir.parent
        if (parent / "multirun.yaml").is_file():
            raise ConfigError(
                f"sweep_dir={sweep_dir} is one job of a sweep, not the sweep; pass its parent: "
                f"gan-report {parent}"
            )
        raise ConfigError(
            f"sweep_dir={sweep_dir} is a single run, not a sweep: a report compares the jobs of "
            f"a multirun (python train.py -m ...); pass a multirun directory, {example}."
        )
    if not find_jobs(sweep_dir):
        what = "is empty" if not any(sweep_dir.iterdir()) else "holds no job directories"
        raise ConfigError(
            f"sweep_dir={sweep_dir} {what} (no <job>/.hydra/overrides.yaml): it is not a sweep; "
            f"pass a multirun directory, {example}."
        )
    return sweep_dir


@dataclass
class ReportArgs:
    """``conf/report.yaml``'s keys."""

    sweep_dir: str | None


@hydra_cli("report", prepare_argv=positional_sweep_dir)
def main(cfg: DictConfig) -> None:
    """``gan-report <sweep dir>`` / ``gan-report sweep_dir=<dir>``: rebuild a sweep's report."""
    args = app_args(cfg, ReportArgs, "gan-report")
    if not args.sweep_dir:
        raise ConfigError(
            "sweep_dir=null: pass a multirun directory, e.g. gan-report logs/train/multiruns/<date>."
        )
    sweep_dir = check_sweep_dir(Path(args.sweep_dir))
    check_writable_dir(sweep_dir, "the sweep directory", "copy the sweep to a writable folder")
    report = write_report(sweep_dir)
    print(report.markdown)
    print(
        f"wrote {report.markdown_path}, {report.csv}" + (f", {report.plot}" if report.plot else "")
    )


if __name__ == "__main__":
    sys.exit(main())
