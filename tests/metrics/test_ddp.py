"""Two CPU processes (gloo) score exactly what one process scores on the same images.

Each rank generates its contiguous share of the latents and of the real subset; torchmetrics
all-gathers the states. 301 samples do not split evenly, and KID uses 10 random subsets: both
were sources of mismatch with DistributedSampler-style sharding, and must not be here. The
k-NN scores (precision, recall, density, coverage) and intra-class FID (a conditional model
on labelled data) come from features gathered from both ranks, and must equal too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gan_lightning.metrics.callback import GenerativeMetrics
from tests.metrics.helpers import (
    TinyConditionalGenerator,
    TinyDataModule,
    TinyGenerator,
    random_classifier_file,
)

NUM_SAMPLES = 301
WORLD_SIZE = 2


def _metrics(classifier: Path) -> GenerativeMetrics:
    return GenerativeMetrics(
        extractor="digits",
        num_samples=NUM_SAMPLES,
        kid_subsets=10,
        kid_subset_size=50,
        is_splits=5,
        batch_size=64,
        classifier_path=str(classifier),
        seed=11,
        prdc=True,
        intra_fid=True,
    )


def _models(conditional: bool) -> tuple[TinyDataModule, TinyGenerator]:
    if conditional:
        return TinyDataModule(num_classes=3), TinyConditionalGenerator(num_classes=3)
    return TinyDataModule(), TinyGenerator()


def _worker(
    rank: int, world_size: int, init_file: str, classifier: str, out_dir: str, conditional: bool
) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        metrics = _metrics(Path(classifier))
        datamodule, module = _models(conditional)
        metrics.prepare(datamodule, is_global_zero=rank == 0, barrier=dist.barrier)
        first = metrics.score(module, datamodule, rank, world_size)
        again = metrics.score(module, datamodule, rank, world_size)  # cached real features
        result = {
            "first": first,
            "again": again,
            "real": metrics.scorer.num_real,
            "real_total": metrics.num_real_total,
            "generated": metrics.scorer.num_generated,
        }
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
def test_two_processes_equal_one_process(tmp_path, conditional):
    classifier = random_classifier_file(tmp_path / "classifier.pt")
    mp.spawn(
        _worker,
        args=(WORLD_SIZE, str(tmp_path / "init"), str(classifier), str(tmp_path), conditional),
        nprocs=WORLD_SIZE,
        join=True,
    )
    single = _metrics(classifier)
    datamodule, module = _models(conditional)
    single.prepare(datamodule)
    expected = single.score(module, datamodule)
    assert not dist.is_initialized()

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    # Each rank held only its share; together exactly the single-process set, no padding.
    assert sorted(r["generated"] for r in ranks) == [150, 151]
    assert sum(r["real"] for r in ranks) == single.scorer.num_real == NUM_SAMPLES
    assert all(r["real_total"] == NUM_SAMPLES for r in ranks)
    assert set(expected) >= {"fid_digits", "kid_mean_digits", "kid_std_digits", "is_digits"}
    assert set(expected) >= {
        "precision_digits",
        "recall_digits",
        "density_digits",
        "coverage_digits",
    }
    assert ("intra_fid_digits" in expected) == ("label_agreement_digits" in expected) == conditional
    for result in ranks:
        for run in ("first", "again"):
            for name, value in expected.items():
                assert result[run][name] == pytest.approx(value, rel=1e-4, abs=1e-9), (run, name)
    assert os.environ.get("RANK") is None  # the test process itself stayed single
