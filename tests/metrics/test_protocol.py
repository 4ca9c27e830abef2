"""The protocol recorded with every score: weights' hashes, resizing, versions, differences."""

from __future__ import annotations

import hashlib
import importlib.metadata

import torch

from gan_lightning.metrics.callback import GenerativeMetrics
from gan_lightning.metrics.classifier import load_classifier, save_classifier
from gan_lightning.metrics.extractors import DigitsExtractor, InceptionExtractor, build_digits
from gan_lightning.metrics.protocol import (
    describe,
    differences,
    extractor_fingerprint,
    log_protocol,
    package_versions,
    resize_of,
    sha256_file,
    sha256_state_dict,
)
from tests.metrics.helpers import TinyDataModule, TinyGenerator, random_classifier_file


def test_hashes_of_files_and_of_weights(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"gan-lightning" * 1000)
    assert sha256_file(path) == hashlib.sha256(b"gan-lightning" * 1000).hexdigest()
    # The same weights saved twice with different metadata (training time...) hash alike;
    # one changed number does not.
    model, _ = load_classifier(random_classifier_file(tmp_path / "a.pt"))
    other, _ = load_classifier(save_classifier(model, tmp_path / "b.pt", train_seconds=12.5))
    assert sha256_state_dict(model) == sha256_state_dict(other)
    with torch.no_grad():
        other.head.bias[0] += 1e-6
    assert sha256_state_dict(model) != sha256_state_dict(other)
    bf16 = torch.nn.Linear(2, 2).to(torch.bfloat16)  # dtypes numpy lacks hash too
    assert len(sha256_state_dict(bf16)) == 64


def test_the_digit_extractor_is_named_by_its_weights(tmp_path):
    path = random_classifier_file(tmp_path / "digits.pt")
    extractor = build_digits(path, tmp_path, train_if_missing=False)
    fingerprint = extractor_fingerprint(extractor)
    assert fingerprint == {
        "extractor_weights": "digits.pt",
        "extractor_sha256": sha256_state_dict(extractor.classifier),
        "extractor_sha256_of": "state_dict",
    }
    assert extractor_fingerprint(extractor) is fingerprint  # computed once


def test_resizing_is_described_per_extractor(tmp_path):
    digits = DigitsExtractor(load_classifier(random_classifier_file(tmp_path / "c.pt"))[0])
    assert resize_of(digits, (1, 28, 28)) == "1x28x28: none"
    assert resize_of(digits, (3, 64, 64)) == (
        "3x64x64: RGB to luma (BT.601); 64x64 -> 28x28 (bilinear, antialiased)"
    )
    inception = InceptionExtractor.__new__(InceptionExtractor)  # its class facts, no weights
    assert resize_of(inception, (1, 28, 28)) == (
        "1x28x28: gray repeated to RGB; 28x28 -> 299x299 (torch-fidelity's bilinear, as TF1)"
    )


def test_differences_name_the_keys_that_make_scores_incomparable():
    base = {
        "num_real": 2000,
        "split": "val",
        "extractor_weights": "a.pt",
        "versions": {"torch": "2.15.0", "torchmetrics": "1.9.0"},
    }
    moved = {**base, "extractor_weights": "elsewhere/a.pt"}  # same weights, other file name
    assert differences([base, moved]) == []
    other = {**base, "split": "test", "versions": {"torch": "2.16.0", "torchmetrics": "1.9.0"}}
    assert differences([base, other]) == ["split", "versions.torch"]
    assert differences([base, None]) == ["protocol"] and differences([None, None]) == []


class _Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.fail, self.params = fail, []

    def log_hyperparams(self, params) -> None:
        if self.fail:
            raise ValueError("nope")
        self.params.append(params)


def test_a_scored_callback_has_the_whole_protocol_and_logs_it_once(tmp_path, caplog):
    metrics = GenerativeMetrics(
        extractor="digits",
        num_samples=120,
        num_real_samples=100,
        kid_subsets=5,
        kid_subset_size=50,
        batch_size=64,
        classifier_path=str(random_classifier_file(tmp_path / "digits.pt")),
        seed=5,
        split="test",
        prdc=True,
    )
    assert metrics.protocol is None  # nothing scored yet
    datamodule = TinyDataModule()
    metrics.prepare(datamodule)
    metrics.score(TinyGenerator(), datamodule)
    protocol = metrics.protocol
    assert protocol == {
        "num_generated": 120,
        "num_real": 100,
        "split": "test",
        "seed": 5,
        "extractor": "digits",
        "extractor_weights": "digits.pt",
        "extractor_sha256": sha256_state_dict(metrics.scorer.extractor.classifier),
        "extractor_sha256_of": "state_dict",
        "resize": "1x28x28: none",
        "kid_subsets": 5,
        "kid_subset_size": 50,
        "precision_recall_k": 3,
        "density_coverage_k": 5,
        "versions": package_versions(),
    }
    assert protocol["versions"]["torchmetrics"] == importlib.metadata.version("torchmetrics")
    assert "120 generated vs 100 real test images, extractor digits" in describe(protocol)
    good, bad = _Recorder(), _Recorder(fail=True)
    log_protocol([bad, good], protocol)  # a logger that fails only warns
    assert good.params == [{"metrics_protocol": protocol}]
    assert "Could not log the metrics protocol to _Recorder" in caplog.text
