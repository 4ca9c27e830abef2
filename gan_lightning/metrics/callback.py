"""FID/KID/IS during training, for every model of the project (GAN, DCGAN, VAE alike).

The callback only uses the module contract (``sample_latent``, ``generate``, ``pixel_range``)
and the DataModule's splits, so it needs nothing from the model's code. Every
``every_n_epochs`` epochs (and after the last one) it scores ``num_samples`` generated images
against real images of ``split`` and logs ``val/fid_<extractor>``, ``val/kid_mean_<extractor>``,
``val/kid_std_<extractor>``, ``val/is_<extractor>`` (+ ``val/classes_covered_digits`` and
``val/class_kl_digits`` for the digit classifier, and ``val/label_agreement_digits`` for a
class-conditional model: how often the classifier agrees with the requested digit); with
``prdc=true`` ``val/precision_<extractor>``, ``recall``, ``density`` and ``coverage``, and with
``intra_fid=true`` ``val/intra_fid_<extractor>`` for a conditional model (docs/evaluation.md).
Select the best checkpoint on it with
``callbacks.model_checkpoint.monitor=val/fid_digits callbacks.model_checkpoint.mode=min``.

**Final score.** However training ends (``max_steps`` mid-epoch, ``max_epochs``, a stop
signal, an exception after at least one batch), :meth:`GenerativeMetrics.score_final` scores
the weights it ends with once (Lightning's ``on_train_end`` / ``on_exception``), unless the
last evaluation already saw exactly them (same real batch and optimizer step). Those scores
go to ``trainer.callback_metrics``, every logger and ``results.json`` "final", and
``train.py`` returns them to a sweeper (:attr:`GenerativeMetrics.final_scores`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.classifier import default_classifier_path, ensure_classifier
from gan_lightning.metrics.extractors import (
    FeatureExtractor,
    build_digits,
    build_inception,
    resolve_extractor_name,
)
from gan_lightning.metrics.images import SPLITS, generated_batches, real_batches, split_dataset
from gan_lightning.metrics.prdc import DENSITY_COVERAGE_K, PRECISION_RECALL_K, check_k
from gan_lightning.metrics.protocol import log_protocol, score_protocol
from gan_lightning.metrics.scores import Scorer, check_sample_counts
from gan_lightning.metrics.threads import one_cpu_thread

log = logging.getLogger(__name__)


class GenerativeMetrics(pl.Callback):
    """Periodic FID/KID/IS of generated samples against real validation (or test) images.

    Args:
        extractor: ``digits``, ``inception`` or ``auto`` (digits for (1, 28, 28) images).
        image_shape: the data's (C, H, W); data that are not images (the 1-D toy) disable it.
        every_n_epochs: score every N epochs (the last epoch is always scored).
        num_samples: generated images per evaluation, split across DDP ranks.
        num_real_samples: real images (a seeded subset of ``split``); None = ``num_samples``,
            capped at the split's size. Their features are extracted once per run.
        split: ``val`` (default; what ``gan-evaluate`` uses to reproduce the logged numbers) or
            ``test``/``train``.
        seed: latents of the generated images and KID/IS subsets; fixed, so two evaluations of
            the same weights give the same numbers.
        batch_size: images per generator / extractor call.
        kid_subsets / kid_subset_size / is_splits: torchmetrics' KID and IS settings.
        data_dir: where MNIST is for training the digit classifier, and where it is cached.
        classifier_path: the cached classifier (None: ``<data_dir>/classifiers/...``).
        inception_weights: a local copy of torch-fidelity's InceptionV3 weights (offline use).
        prdc: also score precision/recall (k=``precision_recall_k``) and density/coverage
            (k=``density_coverage_k``) in the extractor's feature space
            (:mod:`gan_lightning.metrics.prdc`). Off by default in training (it costs 10x
            FID's own compute); gan-evaluate turns it on.
        intra_fid: also score intra-class FID (:mod:`gan_lightning.metrics.intra_fid`) when
            the model is conditional and the data labelled (``val/intra_fid_<extractor>``).
            Off by default in training (ten FIDs: 8x FID's cost on InceptionV3 features);
            gan-evaluate turns it on.
        collapse_min_classes / collapse_min_diversity / collapse_patience: the collapse watch:
            when fewer classes than this are covered (digits), or the samples' feature
            diversity falls below this fraction of the real images' (any extractor), for
            ``patience`` evaluations in a row, the log and the dashboard (``val/collapse``)
            say so. A warning, not a stop: GANs often recover.
    """

    def __init__(
        self,
        extractor: str = "auto",
        image_shape: Any = None,
        every_n_epochs: int = 1,
        num_samples: int = 2000,
        num_real_samples: int | None = None,
        split: str = "val",
        seed: int = 0,
        batch_size: int = 500,
        kid_subsets: int = 100,
        kid_subset_size: int = 500,
        is_splits: int = 10,
        data_dir: str = "data",
        classifier_path: str | None = None,
        inception_weights: str | None = None,
        prdc: bool = False,
        precision_recall_k: int = PRECISION_RECALL_K,
        density_coverage_k: int = DENSITY_COVERAGE_K,
        intra_fid: bool = False,
        collapse_min_classes: int = 8,
        collapse_min_diversity: float = 0.5,
        collapse_patience: int = 2,
    ) -> None:
        if int(every_n_epochs) < 1:
            raise ConfigError(
                f"metrics.every_n_epochs={every_n_epochs} must be >= 1 (metrics=none turns scoring off)."
            )
        if split not in SPLITS:
            raise ConfigError(
                f"metrics.split={split!r} is not known; choose one of {list(SPLITS)}."
            )
        check_sample_counts(num_samples, kid_subset_size)
        if num_real_samples is not None:
            check_sample_counts(num_real_samples, kid_subset_size, "metrics.num_real_samples")
        self.extractor_name = resolve_extractor_name(extractor, image_shape)
        self.every_n_epochs = int(every_n_epochs)
        self.num_samples = int(num_samples)
        self.num_real_samples = int(num_real_samples) if num_real_samples is not None else None
        self.split = split
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.scorer_options = {
            "kid_subsets": int(kid_subsets),
            "kid_subset_size": int(kid_subset_size),
            "is_splits": int(is_splits),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "prdc": bool(prdc),
            "precision_recall_k": check_k(precision_recall_k, "metrics.precision_recall_k"),
            "density_coverage_k": check_k(density_coverage_k, "metrics.density_coverage_k"),
            "intra_fid": bool(intra_fid),
        }
        self.data_dir = str(data_dir)
        self.classifier_path = (
            Path(classifier_path) if classifier_path else default_classifier_path(data_dir)
        )
        if int(collapse_patience) < 1:
            raise ConfigError(f"metrics.collapse_patience must be >= 1; got {collapse_patience}.")
        self.collapse_min_classes = int(collapse_min_classes)
        self.collapse_min_diversity = float(collapse_min_diversity)
        self.collapse_patience = int(collapse_patience)
        self._low_in_a_row = 0
        self._protocol_logged = False
        #: ``val/<name>`` -> value of the latest evaluation, and which weights it saw
        #: (:func:`weights_id`); checkpointed, so a resumed run knows what was scored.
        self.last_scores: dict[str, float] = {}
        self.scored_at: tuple[int, int] | None = None
        #: The weights training started from in this fit (nothing new to score on an
        #: exception before the first batch).
        self._start_id: tuple[int, int] | None = None
        self._final: tuple[tuple[int, int], dict[str, float]] | None = None  # score_final's
        self.scorer: Scorer | None = None
        #: Real images scored, over all ranks (the scorer's own count is this rank's share).
        self.num_real_total = 0
        self._extractor: FeatureExtractor | None = None
        if self.extractor_name is None:
            log.info("metrics: the data are not images (image_shape=%s); no FID/KID.", image_shape)
        elif self.extractor_name == "inception":
            # Missing weights must stop the run now, before any training, not after an epoch.
            self._extractor = build_inception(inception_weights)

    @property
    def enabled(self) -> bool:
        return self.extractor_name is not None

    @property
    def protocol(self) -> dict[str, Any] | None:
        """How the latest scores were computed (:mod:`gan_lightning.metrics.protocol`);
        None before the first evaluation."""
        return score_protocol(self) if self.scorer is not None and self.scorer.has_real else None

    # ------------------------------------------------------------------ lifecycle
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.datamodule is None and self.enabled:
            raise ConfigError("metrics: scoring needs a DataModule (trainer.fit(datamodule=...)).")
        self.prepare(
            trainer.datamodule,
            is_global_zero=trainer.is_global_zero,
            barrier=lambda: trainer.strategy.barrier("gan_lightning.metrics.classifier"),
        )

    def prepare(
        self,
        datamodule: Any,
        is_global_zero: bool = True,
        barrier: Callable[[], None] | None = None,
    ) -> None:
        """Check the real split's size and load the extractor (training the digit classifier
        once, on global rank 0 while the other ranks wait at ``barrier``). Runs before the
        first training step, so every problem surfaces before any compute is spent."""
        if not self.enabled or self.scorer is not None:
            return
        num_real = min(
            self.num_real_samples or self.num_samples, len(split_dataset(datamodule, self.split))
        )
        check_sample_counts(
            num_real,
            self.scorer_options["kid_subset_size"],
            f"the number of real {self.split} images",
        )
        extractor = self._extractor
        if extractor is None:  # digits
            if is_global_zero and not self.classifier_path.is_file():
                ensure_classifier(self.classifier_path, self.data_dir)
            if barrier is not None:
                barrier()
            extractor = build_digits(self.classifier_path, self.data_dir, train_if_missing=False)
        self.scorer = Scorer(extractor, **self.scorer_options)

    def _due(self, trainer: pl.Trainer) -> bool:
        epoch = trainer.current_epoch
        last = bool(
            trainer.max_epochs and trainer.max_epochs > 0 and epoch + 1 >= trainer.max_epochs
        )
        return (epoch + 1) % self.every_n_epochs == 0 or last

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The sanity check runs on an untrained model with a couple of batches: nothing to learn.
        if not self.enabled or trainer.sanity_checking or not self._due(trainer):
            return
        scores = self._evaluate(trainer, pl_module, f"epoch {trainer.current_epoch}")
        pl_module.log_dict(scores, on_step=False, on_epoch=True, sync_dist=True)

    def _evaluate(self, trainer: pl.Trainer, pl_module: Any, when: str) -> dict[str, float]:
        """Score the current weights on every rank, watch for collapse, remember and report
        the scores (``val/<name>`` -> value); logging them is the caller's."""
        start = time.perf_counter()
        scores = self.score(pl_module, trainer.datamodule, trainer.global_rank, trainer.world_size)
        seconds = time.perf_counter() - start
        scores["collapse"] = self.watch_collapse(scores)
        self.last_scores = {f"val/{k}": float(v) for k, v in scores.items()}
        self.scored_at = weights_id(trainer, pl_module)
        if not self._protocol_logged and trainer.is_global_zero:
            log_protocol(trainer.loggers, self.protocol)  # once: config, not a per-step scalar
            self._protocol_logged = True
        shown = ", ".join(f"{k}={v:.4g}" for k, v in scores.items())
        rank_zero_info(
            f"metrics {when} (batch {self.scored_at[0]}): {shown} ({self.num_samples} samples "
            f"vs {self.num_real_total} real {self.split} images, {seconds:.1f} s)"
        )
        return dict(self.last_scores)

    # ------------------------------------------------------------------ final score
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_id = weights_id(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.score_final(trainer, pl_module)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.score_final(trainer, pl_module, exception)

    def score_final(
        self, trainer: pl.Trainer, pl_module: Any, exception: BaseException | None = None
    ) -> dict[str, float]:
        """The scores (``val/<name>`` -> value) of the weights training ends with.

        Computed once, every rank taking part, unless the latest evaluation saw exactly these
        weights; new scores go to ``trainer.callback_metrics`` and every logger. Asked again
        for the same weights it returns the same answer, so other callbacks (``RunResults``)
        may ask in any hook order. After ``exception`` it scores only what this run trained
        (at least one batch), never lets a scoring error hide the exception, and under DDP
        only after a stop signal (one rank's error would leave the others waiting in the
        scoring's collectives). Empty when nothing was scored.
        """
        if not self.enabled or self.scorer is None:
            return {}
        now = weights_id(trainer, pl_module)
        if self._final is None or self._final[0] != now:
            self._final = (now, self._final_scores(trainer, pl_module, now, exception))
        return dict(self._final[1])

    @property
    def final_scores(self) -> dict[str, float]:
        """What :meth:`score_final` answered last (empty before training ended)."""
        return dict(self._final[1]) if self._final is not None else {}

    def _final_scores(
        self,
        trainer: pl.Trainer,
        pl_module: Any,
        now: tuple[int, int],
        exception: BaseException | None,
    ) -> dict[str, float]:
        if self.scored_at == now:
            return dict(self.last_scores)
        if exception is None:
            return self._score_and_log(trainer, pl_module, "end of training")
        if self._start_id is None or now == self._start_id:
            return {}
        name = type(exception).__name__
        if trainer.world_size > 1 and not isinstance(exception, SIGTERMException):
            rank_zero_info(f"metrics: the final weights are not scored after a {name} under DDP.")
            return {}
        # A stop signal's last.ckpt first: Lightning calls checkpoint callbacks last, and a
        # scheduler may follow SIGTERM with SIGKILL while the scoring runs.
        for callback in trainer.checkpoint_callbacks:
            if hasattr(callback, "save_on_stop"):
                callback.save_on_stop(trainer, pl_module, exception)
        try:
            return self._score_and_log(trainer, pl_module, f"after {name}")
        except Exception as err:  # noqa: BLE001 - never hide the error that stopped the run
            log.warning("metrics: could not score the final weights after %s: %s", name, err)
            return {}

    def _score_and_log(self, trainer: pl.Trainer, pl_module: Any, why: str) -> dict[str, float]:
        scores = self._evaluate(trainer, pl_module, f"final, {why}")
        # Lightning refuses self.log() once training ended: update what it reads, log directly.
        device = getattr(pl_module, "device", None)
        trainer.callback_metrics.update(
            {k: torch.tensor(v, device=device) for k, v in scores.items()}
        )
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(scores, step=self.scored_at[0])  # real batches, as pictures
                logger.save()
        return scores

    def watch_collapse(self, scores: dict[str, float]) -> float:
        """1.0 (and a warning) when the samples looked collapsed for ``collapse_patience``
        evaluations in a row, else 0.0."""
        name = self.extractor_name
        covered = scores.get(f"classes_covered_{name}")
        diversity = scores.get(f"diversity_{name}")
        reasons = []
        if covered is not None and covered < self.collapse_min_classes:
            reasons.append(f"{covered:.0f} classes covered (< {self.collapse_min_classes})")
        if diversity is not None and diversity < self.collapse_min_diversity:
            reasons.append(
                f"sample diversity {diversity:.2f} of the real images' (< "
                f"{self.collapse_min_diversity})"
            )
        self._low_in_a_row = self._low_in_a_row + 1 if reasons else 0
        if self._low_in_a_row < self.collapse_patience:
            return 0.0
        if rank_zero_only.rank != 0:
            return 1.0
        log.warning(  # the log, not Python warnings: a warning shown once would hide a relapse
            f"Mode collapse suspected: {', '.join(reasons)} for {self._low_in_a_row} evaluations "
            "in a row. Look at the sample grids; try a lower learning rate for D, label "
            "smoothing, model.objective=hinge with spectral norm, or an earlier checkpoint."
        )
        return 1.0

    def state_dict(self) -> dict[str, Any]:
        return {
            "low_in_a_row": self._low_in_a_row,
            "last_scores": dict(self.last_scores),
            "scored_at": list(self.scored_at) if self.scored_at is not None else None,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._low_in_a_row = int(state_dict.get("low_in_a_row", 0))
        self.last_scores = {str(k): float(v) for k, v in state_dict.get("last_scores", {}).items()}
        scored_at = state_dict.get("scored_at")
        self.scored_at = (int(scored_at[0]), int(scored_at[1])) if scored_at else None

    # ------------------------------------------------------------------ scoring
    def _ensure_real(self, datamodule: Any, pixel_range: Any, rank: int, world_size: int) -> Scorer:
        if self.scorer is None:
            raise RuntimeError("GenerativeMetrics: call prepare() (or fit) before scoring")
        if not self.scorer.has_real:  # once per run: reset_real_features=False keeps them
            num_real = self.num_real_samples or self.num_samples
            batches, self.num_real_total = real_batches(
                datamodule, self.split, num_real, self.seed, rank, world_size
            )
            self.scorer.add_real(
                batches, getattr(datamodule, "pixel_range", pixel_range), num_classes(datamodule)
            )
        return self.scorer

    @torch.inference_mode()
    def score(
        self, module: Any, datamodule: Any, rank: int = 0, world_size: int = 1
    ) -> dict[str, float]:
        """Score ``module``'s samples; every rank calls it (torchmetrics syncs the states)."""
        if self.scorer is not None:
            self.scorer.to(module.device)
        # Generating and extracting are network forwards like training's: the run's threads.
        scorer = self._ensure_real(datamodule, module.pixel_range, rank, world_size)
        scorer.reset_generated()
        fakes = generated_batches(
            module, self.num_samples, self.seed, self.batch_size, rank, world_size
        )
        classes = num_classes(module)
        scorer.add_generated(fakes, module.pixel_range, bool(classes), classes)
        with one_cpu_thread(module.device.type == "cpu"):  # the scores' small-matrix math
            return scorer.compute()

    @torch.inference_mode()
    def score_real_as_generated(
        self, datamodule: Any, split: str, rank: int = 0, world_size: int = 1
    ) -> dict[str, float]:
        """Score ``num_samples`` real images of ``split`` in place of generated ones: the floor
        (FID > 0 at finite N) that a perfect generator would reach with these settings."""
        if split == self.split:
            log.warning(
                "baseline=%s overlaps metrics.split=%s: the floor will be too low.", split, split
            )
        pixel_range = getattr(datamodule, "pixel_range", (-1.0, 1.0))
        on_cpu = next(self.scorer.extractor.parameters()).device.type == "cpu"
        scorer = self._ensure_real(datamodule, pixel_range, rank, world_size)
        scorer.reset_generated()
        batches, _ = real_batches(
            datamodule, split, self.num_samples, self.seed + 1, rank, world_size
        )
        scorer.add_generated(batches, pixel_range, num_classes=num_classes(datamodule))
        with one_cpu_thread(on_cpu):
            return scorer.compute()


def num_classes(owner: Any) -> int:
    """A model's or DataModule's number of classes (0: unconditional / unlabelled)."""
    return int(getattr(owner, "num_classes", 0) or 0)


def weights_id(trainer: pl.Trainer, pl_module: Any) -> tuple[int, int]:
    """Which weights a module holds: (real batches trained on, Lightning's optimizer steps).
    Weights change only by optimizer steps, so two equal ids are the same weights; both
    counts are checkpointed, so this holds across a resume too."""
    return int(getattr(pl_module, "batches_seen", trainer.global_step)), int(trainer.global_step)
