"""Score checkpoints: ``python -m gan_lightning.evaluate ckpt=<path> [key=value ...]``.

Also installed as ``gan-evaluate`` (and ``make eval CKPT=...``):

    gan-evaluate ckpt=logs/train/runs/<date>/checkpoints/epoch_004.ckpt
    gan-evaluate ckpt=logs/train/runs/<date>/checkpoints metrics.num_samples=10000 metrics.split=test
    gan-evaluate baseline=train metrics.num_samples=10000 metrics.split=test   # real-data floor

The model is rebuilt from the config saved in the checkpoint (loaded with
``weights_only=True``), the real images come from the run's own data config, and the scoring
settings default to the ones the run trained with, so with no overrides the numbers equal
the ones logged during training (``val/fid_digits`` ... of that epoch). A directory scores
every checkpoint in it (real features are extracted once) and prints a table over epochs, like
seed 003's Table III. Results are printed and merged into ``metrics.json`` next to the
checkpoint(s), one row per (checkpoint, settings).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_lightning.checkpoints import load_module, read_checkpoint
from gan_lightning.errors import ConfigError
from gan_lightning.modules.base import CHECKPOINT_KEY

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
METRICS_DEFAULTS = CONFIG_DIR / "metrics" / "default.yaml"
#: Settings that make two rows of metrics.json comparable (they are part of the row's key).
SETTING_KEYS = ("extractor", "num_samples", "num_real_samples", "split", "seed", "kid_subset_size")

USAGE = """usage: python -m gan_lightning.evaluate ckpt=<file.ckpt | directory> [key=value ...]

  ckpt=PATH            a checkpoint, or a directory of them (e.g. <run>/checkpoints): one row
                       per checkpoint, ordered by epoch
  baseline=SPLIT       instead of a checkpoint: score real SPLIT images (train) as if they were
                       generated -- the floor a perfect generator reaches at this sample size
  device=auto          auto | cpu | cuda | cuda:N
  output=PATH          JSON results (default: metrics.json next to the checkpoint(s))
  data_dir=PATH        where the data (and the digit classifier) are, if not where the run had them
  metrics.KEY=VALUE    scoring settings; defaults: the run's own (conf/metrics/default.yaml for
                       runs without), e.g. metrics.num_samples=10000 metrics.split=test
                       metrics.extractor=digits|inception metrics.inception_weights=/path.pth
  data.KEY=VALUE ...   any other override of the run's saved config
"""


@dataclass
class EvaluateArgs:
    ckpt: str | None = None
    baseline: str | None = None
    device: str = "auto"
    output: str | None = None
    data_dir: str | None = None
    overrides: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> EvaluateArgs:
    """``key=value`` arguments; ``metrics.*``/``data.*``/... go to the config overrides."""
    if any(a in ("-h", "--help", "help") for a in argv):
        print(USAGE)
        raise SystemExit(0)
    bad = [a for a in argv if "=" not in a or a.startswith("-")]
    if bad:
        raise ConfigError(f"arguments are key=value pairs; got {bad}.\n\n{USAGE}")
    args = EvaluateArgs()
    for arg in argv:
        key, value = arg.split("=", 1)
        if "." in key:
            args.overrides.append(arg)
        elif key in ("ckpt", "baseline", "device", "output", "data_dir"):
            setattr(args, key, value if value not in ("", "null") else None)
        else:
            raise ConfigError(f"unknown argument {key!r}.\n\n{USAGE}")
    if (args.ckpt is None) == (args.baseline is None):
        raise ConfigError(f"pass exactly one of ckpt=<path> or baseline=train.\n\n{USAGE}")
    return args


# --------------------------------------------------------------------------- config
def metrics_config(
    run_config: dict[str, Any], overrides: list[str], data_dir: str | None
) -> DictConfig:
    """The run config with its ``metrics`` node completed from the defaults, then overridden.

    Runs trained with ``metrics=none`` (or before metrics existed) get conf/metrics/default.yaml,
    resolved against their own ``data``/``paths``."""
    config = OmegaConf.create(run_config)
    if not config.get("metrics") or "_target_" not in config.metrics:
        config.metrics = OmegaConf.load(METRICS_DEFAULTS)
    if data_dir is not None:
        OmegaConf.update(config, "data.data_dir", data_dir, force_add=True)
        OmegaConf.update(config, "metrics.data_dir", data_dir, force_add=True)
    try:
        config = OmegaConf.merge(config, OmegaConf.from_dotlist(overrides))
        # Only what is needed is resolved: paths.output_dir points at a Hydra run that is gone.
        OmegaConf.resolve(config.metrics)
        OmegaConf.resolve(config.data)
    except OmegaConfBaseException as err:
        raise ConfigError(f"bad override: {str(err).splitlines()[0]}\n\n{USAGE}") from err
    return config


def baseline_config(overrides: list[str], data_dir: str | None) -> DictConfig:
    """The project's default config (plus Hydra-style overrides such as ``data=mnist``)."""
    from hydra import compose, initialize_config_dir

    hydra_overrides = [o for o in overrides if not o.startswith("metrics.")]
    metric_overrides = [o for o in overrides if o.startswith("metrics.")]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=hydra_overrides)
    run_config = {
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "paths": {"data_dir": cfg.paths.data_dir},
        "metrics": OmegaConf.to_container(cfg.metrics, resolve=True)
        if cfg.get("metrics")
        else None,
    }
    return metrics_config(run_config, metric_overrides, data_dir)


# --------------------------------------------------------------------------- checkpoints
def find_checkpoints(path: Path) -> list[Path]:
    if not path.exists():
        raise ConfigError(f"ckpt={path} does not exist. Pass a .ckpt file or a directory of them.")
    if path.is_file():
        return [path]
    found = sorted(path.glob("*.ckpt")) or sorted(path.glob("checkpoints/*.ckpt"))
    if not found:
        raise ConfigError(
            f"ckpt={path} is a directory without .ckpt files (nor a checkpoints/ folder)."
        )
    return found


def checkpoint_info(path: Path) -> dict[str, Any]:
    checkpoint = read_checkpoint(path)
    state = checkpoint[CHECKPOINT_KEY]
    return {
        "checkpoint": path.name,
        "epoch": int(checkpoint.get("epoch", -1)),
        "global_step": int(checkpoint.get("global_step", -1)),
        "batches_seen": int(state.get("batches_seen", checkpoint.get("global_step", -1))),
        "config": state["config"],
    }


def order_checkpoints(paths: list[Path]) -> list[dict[str, Any]]:
    """By epoch then step; ``last.ckpt`` is dropped when it duplicates an epoch checkpoint."""
    infos = [{**checkpoint_info(p), "path": p} for p in paths]
    seen = {(i["epoch"], i["global_step"]) for i in infos if i["path"].name != "last.ckpt"}
    infos = [
        i
        for i in infos
        if i["path"].name != "last.ckpt" or (i["epoch"], i["global_step"]) not in seen
    ]
    return sorted(infos, key=lambda i: (i["epoch"], i["global_step"], i["checkpoint"]))


# --------------------------------------------------------------------------- output
def settings_of(metrics: Any) -> dict[str, Any]:
    return {
        "extractor": metrics.extractor_name,
        "num_samples": metrics.num_samples,
        "num_real_samples": metrics.num_real_total,
        "split": metrics.split,
        "seed": metrics.seed,
        "kid_subset_size": metrics.scorer_options["kid_subset_size"],
    }


def write_results(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Merge ``rows`` into the JSON file at ``path`` (same checkpoint + settings: replaced)."""
    existing: list[dict[str, Any]] = []
    if path.is_file():
        try:
            existing = json.loads(path.read_text()).get("results", [])
        except (json.JSONDecodeError, AttributeError):
            log.warning("%s is not a results file of gan-evaluate; overwriting it.", path)

    def key(row: dict[str, Any]) -> tuple:
        return (row.get("checkpoint"), *(row.get(k) for k in SETTING_KEYS))

    new_keys = {key(r) for r in rows}
    merged = [r for r in existing if key(r) not in new_keys] + rows
    merged.sort(key=lambda r: (str(r.get("checkpoint")), r.get("epoch", -1), str(r.get("split"))))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=".metrics-", suffix=".json", delete=False
    ) as tmp:
        json.dump({"results": merged}, tmp, indent=2)
        tmp.write("\n")
    os.replace(tmp.name, path)
    return path


def print_table(rows: list[dict[str, Any]], extractor: str, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    columns = [
        ("checkpoint", "checkpoint", None),
        ("epoch", "epoch", None),
        ("batches_seen", "batches", None),
        (f"fid_{extractor}", "FID", ".4f"),
        (f"kid_mean_{extractor}", "KID mean", ".5f"),
        (f"kid_std_{extractor}", "KID std", ".5f"),
        (f"is_{extractor}", "IS", ".3f"),
        (f"classes_covered_{extractor}", "classes", ".0f"),
        (f"class_kl_{extractor}", "KL(hist||unif)", ".4f"),
    ]
    columns = [c for c in columns if any(c[0] in r for r in rows)]
    for _, header, _fmt in columns:
        table.add_column(
            header, justify="left" if header == "checkpoint" else "right", no_wrap=True
        )
    for row in rows:
        table.add_row(
            *(
                "-" if row.get(k) is None else (format(row[k], fmt) if fmt else str(row[k]))
                for k, _, fmt in columns
            )
        )
    console = Console()
    if not console.is_terminal:  # files and CI logs: no 80-column squeeze of the numbers
        console = Console(width=200)
    console.print(table)


# --------------------------------------------------------------------------- main
def build_scoring(config: DictConfig) -> tuple[Any, Any]:
    """(DataModule set up, metrics component prepared) from a resolved run config."""
    from hydra.utils import instantiate

    metrics = instantiate(config.metrics)  # checks the settings before any data is loaded
    if not metrics.enabled:
        raise ConfigError(
            "this run's data are not images (data.image_shape); there is nothing to score."
        )
    datamodule = instantiate(config.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    metrics.prepare(datamodule)
    return datamodule, metrics


def evaluate(args: EvaluateArgs) -> list[dict[str, Any]]:
    """Score the checkpoint(s) (or the real baseline); returns the result rows."""
    from gan_lightning.generate import resolve_device

    device = resolve_device(args.device)
    if args.baseline is not None:
        config = baseline_config(args.overrides, args.data_dir)
        datamodule, metrics = build_scoring(config)
        metrics.scorer.to(device)
        start = time.perf_counter()
        scores = metrics.score_real_as_generated(datamodule, args.baseline)
        row = {
            "checkpoint": f"real:{args.baseline}",
            "epoch": None,
            "batches_seen": None,
            **settings_of(metrics),
            "seconds": round(time.perf_counter() - start, 2),
            **scores,
        }
        print_table(
            [row],
            metrics.extractor_name,
            f"real {args.baseline} vs real {metrics.split} ({metrics.num_samples} images)",
        )
        if args.output:
            print(f"wrote {write_results(Path(args.output), [row])}")
        return [row]

    path = Path(args.ckpt).expanduser()
    infos = order_checkpoints(find_checkpoints(path))
    config = metrics_config(infos[0]["config"], args.overrides, args.data_dir)
    datamodule, metrics = build_scoring(config)
    rows = []
    for info in infos:
        module, _ = load_module(info["path"], map_location=device)
        start = time.perf_counter()
        scores = metrics.score(module, datamodule)
        rows.append(
            {
                "checkpoint": info["checkpoint"],
                "epoch": info["epoch"],
                "batches_seen": info["batches_seen"],
                **settings_of(metrics),
                "seconds": round(time.perf_counter() - start, 2),
                **scores,
            }
        )
        if metrics.scorer.classes is not None:
            rows[-1][f"class_histogram_{metrics.extractor_name}"] = metrics.scorer.class_histogram()
        log.info("%s: %s", info["checkpoint"], scores)
    folder = path if path.is_dir() else path.parent
    title = (
        f"{folder}: {metrics.num_samples} samples vs {metrics.num_real_total} real "
        f"{metrics.split} images, extractor {metrics.extractor_name}, seed {metrics.seed}"
    )
    print_table(rows, metrics.extractor_name, title)
    output = Path(args.output) if args.output else infos[0]["path"].parent / "metrics.json"
    print(f"wrote {write_results(output, rows)}")
    return rows


def main(argv: list[str] | None = None) -> int:
    from gan_lightning.train import _user_error

    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s", datefmt="%H:%M:%S"
    )
    try:
        evaluate(parse_args(sys.argv[1:] if argv is None else argv))
    except Exception as err:  # noqa: BLE001 - only user errors are reformatted
        user = _user_error(err)
        if user is None:
            raise
        print(f"\nError: {user}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
