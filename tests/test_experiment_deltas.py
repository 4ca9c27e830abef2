"""Experiment files are deltas: every key an experiment sets must change the composed config.

An experiment (``conf/experiment/*.yaml``) should read as "what this report changed". A key it
sets to the value the composition already gives (from ``model=...``, ``data=...``, the
experiment it inherits, ...) is noise that hides the real choices, and goes stale silently when
a default changes. :func:`redundant_keys` finds such keys by composing each experiment twice in a
temporary copy of ``conf/``: once as it is, once with its file reduced to its ``defaults`` list
and ``hydra`` section, then comparing every leaf the file sets between the two compositions.

* Values are compared **unresolved**, so ``mu: ${seed001_targets.${seed001_target}.mu}`` is
  not "equal" to the data config's ``mu: 3.0`` just because the default target resolves to 3.0,
  and a key driven by an interpolation (``lr: ${lr}``) is never mistaken for its current value.
* Removing every value line at once gives the same verdict per leaf as removing one line at a
  time: OmegaConf merges mappings key by key and unresolved values do not depend on each other,
  so a leaf of the reduced composition is exactly what that one line would have left. Two
  compositions per experiment instead of one per key keep the test fast.
* Inheritance needs nothing special: the reduced file keeps its ``defaults``, so an inherited
  experiment's values, and overrides of its groups, are part of the baseline.
* ``defaults`` entries are structure, and ``hydra.*`` (sweeper params, sweep subdir, mode) and
  ``task_name`` name runs: none of them is checked.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gan_lightning.train import CONFIG_DIR

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
NOT_VALUES = ("defaults", "hydra", "task_name")  # structure and run names, not settings
ABSENT = object()


def _compose_raw(conf_dir: Path, experiment: str) -> dict[str, Any]:
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}"])
    return OmegaConf.to_container(cfg, resolve=False)


def _leaves(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of the values a YAML body sets (lists and empty mappings are values)."""
    if isinstance(node, dict) and node:
        return [leaf for key, value in node.items() for leaf in _leaves(value, (*prefix, key))]
    return [prefix]


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return ABSENT
        tree = tree[key]
    return tree


def _reduced(text: str) -> str:
    """The file without its values: header comments (``# @package``), defaults and hydra."""
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    body = OmegaConf.to_container(OmegaConf.create(text), resolve=False) or {}
    kept = {key: body[key] for key in ("defaults", "hydra") if key in body}
    return header + (OmegaConf.to_yaml(OmegaConf.create(kept)) if kept else "")


def redundant_keys(conf_dir: Path, experiment: str, work_dir: Path) -> list[str]:
    """Dotted keys that ``experiment``'s own file sets to the value they would have without it.

    ``conf_dir`` is never modified: the reduced file is written to a copy under ``work_dir``.
    """
    path = Path(conf_dir) / "experiment" / f"{experiment}.yaml"
    text = path.read_text()
    body = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    copy = Path(work_dir) / f"conf_without_{experiment}"
    shutil.copytree(conf_dir, copy)
    (copy / "experiment" / f"{experiment}.yaml").write_text(_reduced(text))
    full, base = _compose_raw(Path(conf_dir), experiment), _compose_raw(copy, experiment)
    paths = [p for p in _leaves(body) if p and p[0] not in NOT_VALUES]
    return [".".join(p) for p in paths if _get(full, p) == _get(base, p)]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_sets_only_what_it_changes(experiment, tmp_path):
    redundant = redundant_keys(Path(CONFIG_DIR), experiment, tmp_path)
    assert not redundant, (
        f"conf/experiment/{experiment}.yaml sets {redundant} to the value they already have "
        "without it: drop those lines (they are defaults, or inherited)"
    )


def test_the_check_reports_a_redundant_key(tmp_path):
    """The checker itself: a value equal to the model's default, one equal to an inherited
    experiment's, and interpolations that only resolve to the same value."""
    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    (conf / "experiment" / "seed999_redundant.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n"
        "  - override /model: gan\n"
        "task_name: seed999_redundant\n"
        "model:\n"
        "  latent_dim: 100                          # gan.yaml's value\n"
        "  g_steps: 2                               # a change\n"
        "  optimizer_d:\n"
        "    lr: ${model.optimizer_g.lr}            # 2e-4 either way, but it follows G's lr\n"
    )
    (conf / "experiment" / "seed999_inherits.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n"
        "  - seed003_mlp_gan\n"
        "task_name: seed999_inherits\n"
        "data:\n"
        "  batch_size: 32                           # seed003_mlp_gan's value\n"
        "  val_size: 100\n"
        "trainer:\n"
        "  max_epochs: 200                          # seed003_mlp_gan's value\n"
    )
    assert redundant_keys(conf, "seed999_redundant", tmp_path) == ["model.latent_dim"]
    assert redundant_keys(conf, "seed999_inherits", tmp_path) == [
        "data.batch_size",
        "trainer.max_epochs",
    ]
    # the repository's conf/ is read, never written
    assert not (Path(CONFIG_DIR) / "experiment" / "seed999_redundant.yaml").exists()
