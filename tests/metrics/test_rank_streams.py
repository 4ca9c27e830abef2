"""After an evaluation every DDP rank draws on from its own random stream: not the other
rank's, not a restart of the stream it had before (the metrics seed KID's subsets and IS's
splits inside a block that puts every generator it touches back). Two CPU processes (gloo),
through the noise each rank actually draws; the CUDA half is in scripts/gpu_check.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gan_lightning.metrics.callback import GenerativeMetrics
from gan_lightning.modules.base import seed_rank_stream
from tests.metrics.helpers import TinyDataModule, TinyGenerator, random_classifier_file

WORLD_SIZE = 2


def _worker(rank: int, init_file: str, classifier: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD_SIZE)  # fmt: skip
    try:
        metrics = GenerativeMetrics(
            extractor="digits", num_samples=64, kid_subsets=4, kid_subset_size=16,
            is_splits=2, batch_size=32, classifier_path=classifier, seed=11,
        )  # fmt: skip
        datamodule, module = TinyDataModule(n=128), TinyGenerator()
        metrics.prepare(datamodule, is_global_zero=rank == 0, barrier=dist.barrier)
        torch.manual_seed(5)  # seed_everything: every rank alike ...
        seed_rank_stream(rank)  # ... then each its own stream (GenerativeModule.on_fit_start)
        before = module.sample_latent(4)
        unevaluated = torch.get_rng_state()
        metrics.score(module, datamodule, rank, WORLD_SIZE)
        after = module.sample_latent(4)
        torch.set_rng_state(unevaluated)
        expected = module.sample_latent(4)  # what the rank draws next without an evaluation
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(
            {"before": before.tolist(), "after": after.tolist(), "expected": expected.tolist()}
        ))  # fmt: skip
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_each_rank_draws_its_own_fresh_noise_after_an_evaluation(tmp_path):
    classifier = random_classifier_file(tmp_path / "classifier.pt")
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(classifier), str(tmp_path)),
             nprocs=WORLD_SIZE, join=True)  # fmt: skip
    ranks = [
        {
            k: torch.tensor(v)
            for k, v in json.loads((tmp_path / f"rank{r}.json").read_text()).items()
        }
        for r in range(WORLD_SIZE)
    ]
    assert not torch.equal(ranks[0]["after"], ranks[1]["after"])  # not the other rank's noise
    for rank in ranks:
        assert not torch.equal(rank["after"], rank["before"])  # not a restart of the stream
        assert torch.equal(rank["after"], rank["expected"])  # the stream continues untouched
