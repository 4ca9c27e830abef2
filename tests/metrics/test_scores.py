"""FID/KID/IS on precomputed features: identical sets score ~0, shifted sets do not; the
class histogram; real statistics surviving resets; sample-count checks; rank shards."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.classifier import load_classifier
from gan_lightning.metrics.extractors import DigitsExtractor
from gan_lightning.metrics.scores import ClassHistogram, Scorer, check_sample_counts, shard
from tests.metrics.helpers import random_classifier_file


@pytest.fixture()
def scorer(tmp_path) -> Scorer:
    classifier, _ = load_classifier(random_classifier_file(tmp_path / "c.pt"))
    return Scorer(DigitsExtractor(classifier), kid_subsets=20, kid_subset_size=100, seed=3)


def _digits_like(n: int, seed: int) -> torch.Tensor:
    """Blobby [0, 1] images with some structure, so features vary across samples."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 7, 7, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear")


def test_a_set_against_itself_scores_zero_and_a_shifted_set_does_not(scorer):
    images = _digits_like(300, 0)
    scorer.add_real([images], (0.0, 1.0))
    scorer.add_generated([images], (0.0, 1.0))
    same = scorer.compute()
    assert abs(same["fid_digits"]) < 1e-3
    scorer.reset_generated()
    scorer.add_generated([(images * 0.6 + 0.4)], (0.0, 1.0))  # brighter, lower contrast
    shifted = scorer.compute()
    assert shifted["fid_digits"] > 0.1
    assert shifted["fid_digits"] > 1000 * abs(same["fid_digits"])
    # KID is unbiased: ~0 (either sign) for one distribution, clearly > 0 for two.
    assert abs(same["kid_mean_digits"]) < 0.05 * shifted["kid_mean_digits"]
    assert shifted["kid_mean_digits"] > 3 * shifted["kid_std_digits"] > 0
    assert 1.0 <= shifted["is_digits"] <= 10.0


def test_real_statistics_survive_reset_and_scores_repeat(scorer):
    scorer.add_real([_digits_like(200, 1)], (0.0, 1.0))
    for _ in range(2):
        scorer.reset_generated()
        scorer.add_generated([_digits_like(150, 2)], (0.0, 1.0))
        scores = scorer.compute()
        assert scorer.num_real == 200 and int(scorer.fid.real_features_num_samples) == 200
        assert int(scorer.fid.fake_features_num_samples) == 150
    first = scores
    scorer.reset_generated()
    scorer.add_generated([_digits_like(150, 2)], (0.0, 1.0))
    assert scorer.compute() == first  # seeded KID subsets and IS splits: identical numbers


def test_class_histogram_shows_mode_collapse():
    histogram = ClassHistogram(10)
    histogram.update(torch.nn.functional.one_hot(torch.full((50,), 3), 10).float())
    collapsed = histogram.compute()
    assert int(collapsed["covered"]) == 1
    assert float(collapsed["kl"]) == pytest.approx(math.log(10))
    histogram.reset()
    histogram.update(torch.nn.functional.one_hot(torch.arange(100) % 10, 10).float())
    balanced = histogram.compute()
    assert int(balanced["covered"]) == 10 and float(balanced["kl"]) == pytest.approx(0.0, abs=1e-12)


def test_sample_counts_are_checked_with_the_fix_in_the_message():
    check_sample_counts(1000, 1000)
    with pytest.raises(
        ConfigError, match=r"metrics.num_samples=500 is smaller than metrics.kid_subset_size=1000"
    ):
        check_sample_counts(500, 1000)
    with pytest.raises(ConfigError, match="at least 2"):
        check_sample_counts(1, 1)


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3), (1, 2)])
def test_shards_are_contiguous_and_cover_everything_once(n, world):
    pieces = [list(range(n))[shard(n, r, world)] for r in range(world)]
    assert sum(pieces, []) == list(range(n))
    assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def test_diversity_is_one_for_real_like_samples_and_near_zero_for_a_collapsed_set(scorer):
    images = _digits_like(300, 0)
    scorer.add_real([images], (0.0, 1.0))
    scorer.add_generated([_digits_like(300, 1)], (0.0, 1.0))
    assert scorer.compute()["diversity_digits"] == pytest.approx(1.0, abs=0.15)
    scorer.reset_generated()
    scorer.add_generated([images[:1].expand(300, -1, -1, -1)], (0.0, 1.0))  # one image, 300x
    assert scorer.compute()["diversity_digits"] < 0.01


def test_label_agreement_counts_requested_classes(scorer):
    scorer.add_real([_digits_like(200, 0)], (0.0, 1.0))
    images = _digits_like(200, 2)
    _, logits = scorer.extractor.extract(images, (0.0, 1.0))
    predicted = logits.argmax(1)
    wrong = (predicted + 1) % 10
    scorer.add_generated([(images, predicted)], (0.0, 1.0), conditional=True)
    assert scorer.compute()["label_agreement_digits"] == 1.0
    scorer.reset_generated()
    labels = torch.where(torch.arange(200) < 50, predicted, wrong)  # a quarter agree
    scorer.add_generated([(images, labels)], (0.0, 1.0), conditional=True)
    assert scorer.compute()["label_agreement_digits"] == pytest.approx(0.25)
    scorer.reset_generated()
    scorer.add_generated([images], (0.0, 1.0))  # unconditional: no agreement score
    assert "label_agreement_digits" not in scorer.compute()


def test_prdc_of_the_scorer_is_the_function_on_its_features_with_real_radii_kept(tmp_path):
    from gan_lightning.metrics.prdc import prdc

    classifier, _ = load_classifier(random_classifier_file(tmp_path / "c.pt"))
    scorer = Scorer(DigitsExtractor(classifier), kid_subsets=5, kid_subset_size=50, prdc=True)
    real = _digits_like(150, 0)
    scorer.add_real([real], (0.0, 1.0))
    real_features, _ = scorer.extractor.extract(real, (0.0, 1.0))
    for seed in (1, 2):  # the second evaluation reuses the real radii of the first
        scorer.reset_generated()
        fake = _digits_like(120, seed)
        scorer.add_generated([fake], (0.0, 1.0))
        scores = scorer.compute()
        fake_features, _ = scorer.extractor.extract(fake, (0.0, 1.0))
        expected = prdc(real_features, fake_features)
        assert {k: scores[f"{k}_digits"] for k in expected} == pytest.approx(expected)
    assert scorer._real_radii is not None
    scorer.add_real([real[:100]], (0.0, 1.0))  # other real images: radii recomputed
    assert scorer._real_radii is None
