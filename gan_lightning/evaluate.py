"""Score checkpoints: ``gan-evaluate ckpt=<path> [key=value ...]``.

Also ``python -m gan_lightning.evaluate`` and ``make eval CKPT=...``; keys and examples are in
``conf/evaluate.yaml`` (``gan-evaluate --help`` prints them).

The model is rebuilt from the config saved in the checkpoint (loaded with
``weights_only=True``; classes of your own package need ``trust=[my_project]``, or
``model_config=<your config>`` rebuilds model, data and metrics from your file and reads only
the weights), the real images come from the run's own data config, and the scoring
settings default to the ones the run trained with, so with no overrides the numbers equal
the ones logged during training (``val/fid_digits`` ... of that epoch). A directory scores
every checkpoint in it (real features are extracted once) and prints a table over epochs, like
seed 003's Table III. Results are printed and merged into ``metrics.json`` next to the
checkpoint(s), one row per (checkpoint, settings), each with the protocol that makes it
comparable (:mod:`gan_lightning.metrics.protocol`). Precision/recall/density/coverage and
intra-class FID, opt-in during training for their cost, are computed here unless the command
line turns them off (:data:`EVALUATE_ON`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.protocol import describe
from gan_lightning.modules.base import CHECKPOINT_KEY
from gan_lightning.runtime.checkpoints import (
    load_module,
    read_checkpoint,
    read_own_config,
    use_ema,
)
from gan_lightning.runtime.cli import hydra_cli, resolve_device
from gan_lightning.runtime.config_checks import app_args, check_node
from gan_lightning.runtime.filesystem import (
    atomic_write_text,
    check_input_dir,
    check_output_file,
    from_os_error,
)
from gan_lightning.runtime.safe_config import check_trust, instantiate_trusted

log = logging.getLogger(__name__)

#: Settings that make two rows of metrics.json comparable (they are part of the row's key).
SETTING_KEYS = ("extractor", "num_samples", "num_real_samples", "split", "seed", "kid_subset_size")
#: The nodes of a checkpoint's run config that gan-evaluate's overrides may change.
OVERRIDABLE = ("data", "metrics")
#: Scores that are opt-in during training (for their cost) but that gan-evaluate computes
#: unless the command line sets them (``metrics.prdc=false``): the numbers a paper reports.
EVALUATE_ON = ("prdc", "intra_fid")


@dataclass
class EvaluateArgs:
    """What to score and where to write it (``conf/evaluate.yaml``'s top-level keys)."""

    ckpt: str | None = None
    baseline: str | None = None
    device: str = "auto"
    output: str | None = None
    data_dir: str | None = None
    seed: int | None = None
    ema: bool | None = None
    trust: list[str] | None = None
    model_config: str | None = None


def check_args(cfg: DictConfig) -> EvaluateArgs:
    """The top-level keys, checked: exactly one of ``ckpt`` and ``baseline``."""
    args = app_args(cfg, EvaluateArgs, "gan-evaluate")
    args.trust = check_trust(args.trust)
    if (args.ckpt is None) == (args.baseline is None):
        raise ConfigError(
            "pass exactly one of ckpt=<path> or baseline=train (see gan-evaluate --help)."
        )
    return args


def check_paths(args: EvaluateArgs) -> None:
    """The results file can be written and the data folder is one, before minutes of scoring:
    ``output=`` (or ``metrics.json`` next to the checkpoints)."""
    if args.data_dir is not None:
        check_input_dir(args.data_dir, "data_dir", "point data_dir at the folder of the datasets")
    output = args.output
    if output is None and args.ckpt is not None:
        output = str(find_checkpoints(Path(args.ckpt).expanduser())[0].parent / "metrics.json")
    if output is not None:
        check_output_file(output, "the results file", "pass output=<a writable file>")


def user_overrides(cfg: DictConfig, overrides: list[str]) -> list[tuple[str, Any]]:
    """``(key, value)`` for each of the user's ``data``/``metrics`` overrides, the value as
    Hydra composed it: ``metrics=inception`` gives the whole node, ``metrics.split=test`` one
    key."""
    changes = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key.split(".", 1)[0] in OVERRIDABLE:
            changes.append(
                (
                    key,
                    OmegaConf.to_container(cfg, resolve=False)[key]
                    if "." not in key
                    else OmegaConf.select(cfg, key),
                )
            )
    return changes


# --------------------------------------------------------------------------- config
def metrics_config(
    run_config: dict[str, Any],
    defaults: DictConfig,
    changes: list[tuple[str, Any]],
    data_dir: str | None,
) -> DictConfig:
    """The run config with its ``metrics`` node completed from the defaults, then changed.

    Runs trained with ``metrics=none`` (or before metrics existed) get the default metrics
    node, resolved against their own ``data``/``paths``."""
    config = OmegaConf.create(run_config)
    if not config.get("metrics") or "_target_" not in config.metrics:
        config.metrics = OmegaConf.to_container(defaults.metrics, resolve=False)
    for key, value in changes:
        OmegaConf.update(config, key, value, force_add=True, merge=False)
    if data_dir is not None:
        OmegaConf.update(config, "data.data_dir", data_dir, force_add=True)
        OmegaConf.update(config, "metrics.data_dir", data_dir, force_add=True)
    try:
        # Only what is needed is resolved: paths.output_dir points at a Hydra run that is gone.
        OmegaConf.resolve(config.metrics)
        OmegaConf.resolve(config.data)
    except OmegaConfBaseException as err:
        raise ConfigError(f"bad override: {str(err).splitlines()[0]}") from err
    return config


def with_paper_scores(config: DictConfig, overrides: list[str]) -> DictConfig:
    """Turn on :data:`EVALUATE_ON` in ``config.metrics``, except those the user set."""
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    for key in EVALUATE_ON:
        if f"metrics.{key}" not in given:
            OmegaConf.update(config, f"metrics.{key}", True, force_add=True)
    return config


def baseline_config(cfg: DictConfig, data_dir: str | None) -> DictConfig:
    """gan-evaluate's own ``data``/``paths``/``metrics`` (composed with the user's overrides)."""
    run_config = {
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "paths": {"data_dir": cfg.paths.data_dir},
        "metrics": OmegaConf.to_container(cfg.metrics, resolve=False),
    }
    return metrics_config(run_config, cfg, [], data_dir)


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


def checkpoint_info(
    path: Path, trust: tuple[str, ...] = (), check_config: bool = True
) -> dict[str, Any]:
    checkpoint = read_checkpoint(path, trust=trust, check_config=check_config)
    state = checkpoint[CHECKPOINT_KEY]
    return {
        "checkpoint": path.name,
        "epoch": int(checkpoint.get("epoch", -1)),
        "global_step": int(checkpoint.get("global_step", -1)),
        "batches_seen": int(state.get("batches_seen", checkpoint.get("global_step", -1))),
        "config": state["config"],
    }


def order_checkpoints(
    paths: list[Path], trust: tuple[str, ...] = (), check_config: bool = True
) -> list[dict[str, Any]]:
    """By epoch then step; ``last.ckpt`` is dropped when it duplicates an epoch checkpoint."""
    infos = [{**checkpoint_info(p, trust, check_config), "path": p} for p in paths]
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


def details_of(metrics: Any) -> dict[str, Any]:
    """What a row holds beside the scalar scores: the per-class FIDs of intra-class FID and
    the protocol (:mod:`gan_lightning.metrics.protocol`) that makes rows comparable or not."""
    details: dict[str, Any] = {}
    if metrics.scorer.per_class_fid is not None:
        details[f"intra_fid_per_class_{metrics.extractor_name}"] = metrics.scorer.per_class_fid
    details["protocol"] = metrics.protocol
    return details


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
    try:
        return atomic_write_text(path, json.dumps({"results": merged}, indent=2) + "\n")
    except OSError as err:
        raise from_os_error(
            err,
            "Writing the scores to",
            path,
            "the scores are in the table above; pass output=<a writable file> to keep them",
        ) from err


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
        (f"label_agreement_{extractor}", "agreement", ".4f"),
        (f"intra_fid_{extractor}", "intra-FID", ".4f"),
        (f"precision_{extractor}", "precision", ".4f"),
        (f"recall_{extractor}", "recall", ".4f"),
        (f"density_{extractor}", "density", ".4f"),
        (f"coverage_{extractor}", "coverage", ".4f"),
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
    protocol = rows[-1].get("protocol") if rows else None
    if protocol:
        console.print(f"protocol: {describe(protocol)}", highlight=False)


# --------------------------------------------------------------------------- main
def build_scoring(
    config: DictConfig, trust: tuple[str, ...] = (), own: tuple[str, ...] = ()
) -> tuple[Any, Any]:
    """(DataModule set up, metrics component prepared) from a resolved run config; the nodes
    named in ``own`` come from the user's own ``model_config`` file, the others from a file
    someone may have given them."""

    def build(key: str) -> Any:
        if key in own:
            return instantiate(config[key])
        # Through the allowlist: with ckpt=, these nodes come from a file someone gave us.
        return instantiate_trusted(config[key], key, trust)

    metrics = build("metrics")  # checks settings before data
    if not metrics.enabled:
        raise ConfigError(
            "this run's data are not images (data.image_shape); there is nothing to score."
        )
    datamodule = build("data")
    datamodule.prepare_data()
    datamodule.setup("fit")
    metrics.prepare(datamodule)
    return datamodule, metrics


def evaluate(cfg: DictConfig, overrides: list[str] | None = None) -> list[dict[str, Any]]:
    """Score the checkpoint(s) (or the real baseline) of a composed ``conf/evaluate.yaml``;
    ``overrides`` are the user's command-line overrides. Returns the result rows."""
    args = check_args(cfg)
    for key in OVERRIDABLE:  # the package's nodes with the user's overrides, as training checks
        if cfg.get(key) is not None:
            check_node(cfg[key], key)
    device = resolve_device(args.device)
    check_paths(args)
    if args.baseline is not None:
        config = baseline_config(cfg, args.data_dir)  # the user's own composed config
        config = with_paper_scores(config, list(overrides or []))
        datamodule, metrics = build_scoring(config, args.trust, own=("metrics", "data"))
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
            **details_of(metrics),
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
    own_config = args.model_config is not None
    infos = order_checkpoints(find_checkpoints(path), args.trust, check_config=not own_config)
    changes = user_overrides(cfg, list(overrides or []))
    own = read_own_config(args.model_config) if own_config else {}
    config = metrics_config({**infos[0]["config"], **own}, cfg, changes, args.data_dir)
    config = with_paper_scores(config, list(overrides or []))
    datamodule, metrics = build_scoring(config, args.trust, tuple(own))
    rows = []
    for info in infos:
        module, _ = load_module(
            info["path"], map_location=device, trust=args.trust, model_config=args.model_config
        )
        use_ema(module, args.ema)
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
        rows[-1].update(details_of(metrics))
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


@hydra_cli("evaluate")
def main(cfg: DictConfig) -> None:
    """``gan-evaluate``: score, print the table, merge the rows into metrics.json."""
    from hydra.core.hydra_config import HydraConfig

    evaluate(cfg, list(HydraConfig.get().overrides.task))


if __name__ == "__main__":
    sys.exit(main())
