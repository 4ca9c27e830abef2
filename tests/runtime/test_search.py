"""hparams_search=optuna: the search space, the metric it minimises, a real (tiny) study
that reproduces itself, sequentially and with trials trained in parallel (joblib), and a
study whose trials stop on max_steps (scored by their final weights)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gan_lightning.runtime.search import MAX_UPDATE_RATIO, update_ratio
from gan_lightning.train import CONFIG_DIR
from tests.helpers import one_epoch_of
from tests.metrics.helpers import metrics_overrides, random_classifier_file
from tests.test_train import run_train


def test_update_ratio_never_asks_for_both_ratios():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        update_ratio(OmegaConf.create({}), trial)
        d_steps, g_steps = trial.params["model.d_steps"], trial.params["model.g_steps"]
        assert min(d_steps, g_steps) == 1 and max(d_steps, g_steps) <= MAX_UPDATE_RATIO
        seen.add((d_steps, g_steps))
        study.tell(trial, 0.0)
    assert {(1, 1), (3, 1), (1, 3)} <= seen  # both directions are searched


def test_search_config_minimises_the_logged_fid():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", ["hparams_search=optuna"], return_hydra_config=True)
    # The name the metrics callback logs on MNIST: val/<score>_<extractor>, digits extractor.
    assert cfg.optimized_metric == "val/fid_digits" and cfg.metrics.extractor == "auto"
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN" and cfg.hydra.sweeper.direction == "minimize"
    assert cfg.hydra.sweeper.sampler.seed == cfg.seed  # reproducible trials
    for key in cfg.hydra.sweeper.params:  # every searched key exists (no stray new key)
        assert OmegaConf.select(cfg, key, default=KeyError) is not KeyError, key


def tiny_search(mnist_dir: Path, classifier: Path, sweep: Path, *extra: str) -> list[str]:
    return [
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",  # two trials per batch (in parallel with joblib)
        *one_epoch_of(6),
        "num_threads=1",
        "logger=none",
        f"paths.data_dir={mnist_dir}",
        f"hydra.sweep.dir={sweep}",
        *metrics_overrides(classifier),
        *extra,
    ]


def trials(sweep: Path) -> list[tuple[list[str], float]]:
    """(searched overrides, final FID) of every trial, in trial order."""
    found = []
    for job in sorted((p for p in sweep.iterdir() if p.is_dir()), key=lambda p: int(p.name)):
        overrides = [str(o) for o in OmegaConf.load(job / ".hydra" / "overrides.yaml")]
        results = json.loads((job / "results.json").read_text())
        searched = [o for o in overrides if o.startswith("model.") and "hidden_sizes" not in o]
        found.append((searched, results["final"]["val/fid_digits"]))
    return found


@pytest.mark.slow
def test_optuna_study_reproduces_sequentially_and_in_parallel(mnist_dir, tmp_path):
    classifier = random_classifier_file(tmp_path / "classifier.pt")
    sequential, parallel = tmp_path / "sequential", tmp_path / "parallel"
    out = run_train(tiny_search(mnist_dir, classifier, sequential))
    assert out.returncode == 0, out.stderr[-3000:]
    joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    out = run_train(tiny_search(mnist_dir, classifier, parallel, *joblib))
    assert out.returncode == 0, out.stderr[-3000:]

    found = trials(sequential)
    assert len(found) == 4 and len({tuple(o) for o, _ in found}) == 4  # four distinct trials
    assert found == trials(parallel)  # same seed: same trials, same scores, either launcher
    for overrides, _ in found:
        keys = {o.split("=")[0] for o in overrides}
        assert {"model.optimizer_g.lr", "model.optimizer_d.betas.0", "model.d_steps"} <= keys
        assert {"model.g_steps", "model.real_label_range"} <= keys

    # train.py returned each trial's final val/fid_digits; the study's best is the lowest.
    best = OmegaConf.load(sequential / "optimization_results.yaml")
    fids = [fid for _, fid in found]
    assert best.best_value == pytest.approx(min(fids), rel=1e-12)
    best_overrides = found[fids.index(min(fids))][0]
    for key, value in best.best_params.items():
        assert f"{key}={value}" in best_overrides
    assert "Optuna: best value" in (sequential / "summary.md").read_text()


@pytest.mark.slow
def test_optuna_search_with_max_steps_scores_every_trial(mnist_dir, tmp_path):
    """``trainer.max_steps`` ends each trial mid-epoch, before any periodic evaluation: the
    final score of the weights is what train.py returns to Optuna (it used to fail every
    trial: "optimized_metric='val/fid_digits' was not logged")."""
    classifier = random_classifier_file(tmp_path / "classifier.pt")
    sweep = tmp_path / "sweep"
    out = run_train(
        [
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "trainer.max_steps=3",
            "trainer.limit_val_batches=1",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "model.generator.hidden_sizes=[16]",
            "model.discriminator.hidden_sizes=[16]",
            "num_threads=1",
            "logger=none",
            f"paths.data_dir={mnist_dir}",
            f"hydra.sweep.dir={sweep}",
            *metrics_overrides(classifier),
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = trials(sweep)
    assert len(found) == 2
    for job in ("0", "1"):
        results = json.loads((sweep / job / "results.json").read_text())
        assert results["steps"] == 3 and [e["step"] for e in results["history"]] == [3]
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == pytest.approx(min(fid for _, fid in found), rel=1e-12)


def test_optuna_database_storage_works(tmp_path):
    """``hydra.sweeper.storage=sqlite:///<file>``: a study that survives its sweep and resumes.
    Optuna 2.x needs SQLAlchemy < 2 for it, which pyproject.toml pins."""
    import sqlalchemy

    # pyproject.toml pins SQLAlchemy < 2; a newer one means the install broke the pin.
    assert int(sqlalchemy.__version__.split(".")[0]) < 2, (
        f"SQLAlchemy {sqlalchemy.__version__}: Optuna 2.x storage needs < 2; run make install"
    )
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    for expected in (2, 4):
        study = optuna.create_study(storage=storage, study_name="s", load_if_exists=True)
        study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0) ** 2, n_trials=2)
        assert len(study.trials) == expected
