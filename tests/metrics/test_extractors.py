"""The image conversion shared by every extractor, the extractor choice, and the inception
weights path (with a weights file of the right architecture made here: no downloads)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.metrics import extractors
from gan_lightning.metrics.extractors import (
    DigitsExtractor,
    InceptionExtractor,
    InputSpec,
    build_extractor,
    build_inception,
    prepare_images,
    resolve_extractor_name,
)
from tests.metrics.helpers import random_classifier_file

GRAY28 = InputSpec(channels=1, size=28, dtype=torch.float32)
RGB_UINT8 = InputSpec(channels=3, size=None, dtype=torch.uint8)


@pytest.mark.parametrize("pixel_range", [(-1.0, 1.0), (-0.5, 0.5), (0.0, 1.0)])
def test_every_pixel_range_maps_to_the_same_extractor_input(pixel_range):
    unit = torch.rand(4, 1, 28, 28)
    low, high = pixel_range
    images = unit * (high - low) + low
    assert torch.allclose(prepare_images(images, pixel_range, GRAY28), unit, atol=1e-6)
    as_uint8 = prepare_images(images, pixel_range, RGB_UINT8)
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == (4, 3, 28, 28)
    assert torch.equal(as_uint8[:, 0], as_uint8[:, 2])  # gray repeated into RGB
    assert torch.equal(as_uint8[:, :1], (unit * 255).round().to(torch.uint8))


def test_uint8_input_is_read_as_0_255_and_overshoot_is_clamped():
    raw = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(2, 1, 28, 3)
    out = prepare_images(raw.contiguous(), (-1.0, 1.0), InputSpec(1, None, torch.float32))
    assert torch.allclose(out[0, 0, 0], torch.tensor([0.0, 128 / 255, 1.0]))
    overshoot = torch.full((1, 1, 28, 28), 1.3)  # a linear generator leaving [-1, 1]
    assert prepare_images(overshoot, (-1.0, 1.0), GRAY28).max() == 1.0


def test_rgb_becomes_luma_and_sizes_are_resampled():
    rgb = torch.zeros(2, 3, 64, 64)
    rgb[:, 1] = 1.0  # pure green
    out = prepare_images(rgb, (0.0, 1.0), GRAY28)
    assert out.shape == (2, 1, 28, 28)
    assert torch.allclose(out, torch.full_like(out, 0.587), atol=1e-5)
    with pytest.raises(ConfigError, match="channels"):
        prepare_images(torch.zeros(1, 2, 28, 28), (0.0, 1.0), GRAY28)
    with pytest.raises(ConfigError, match=r"\(N, C, H, W\)"):
        prepare_images(torch.zeros(5, 1), (0.0, 1.0), GRAY28)


def test_auto_extractor_follows_the_data():
    assert resolve_extractor_name("auto", [1, 28, 28]) == "digits"
    assert resolve_extractor_name("auto", [3, 64, 64]) == "inception"
    assert resolve_extractor_name("digits", [3, 64, 64]) == "digits"
    assert resolve_extractor_name("auto", [1]) is None  # the 1-D toy: nothing to score
    with pytest.raises(ConfigError, match="metrics.extractor='vgg'"):
        resolve_extractor_name("vgg", [1, 28, 28])


def test_digits_extractor_is_frozen(tmp_path):
    extractor = build_extractor(
        "digits", classifier_path=random_classifier_file(tmp_path / "c.pt"), train_if_missing=False
    )
    assert isinstance(extractor, DigitsExtractor)
    extractor.train()
    assert not extractor.training and not extractor.classifier.training
    assert not any(p.requires_grad for p in extractor.parameters())
    features, logits = extractor.extract(torch.rand(3, 1, 28, 28), (0.0, 1.0))
    assert features.shape == (3, 128) and logits.shape == (3, 10)
    with pytest.raises(ConfigError, match="train_classifier"):
        build_extractor("digits", classifier_path=tmp_path / "missing.pt", train_if_missing=False)


# --------------------------------------------------------------------------- inception
@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> Path:
    """A randomly initialised state dict of torch-fidelity's InceptionV3, saved like the real
    weights file (the network is built with its weight loading stubbed out)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *a, **k: None)
        patch.setattr(
            fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None
        )
        net = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / extractors.INCEPTION_FILE
    torch.save(net.state_dict(), path)
    return path


def test_inception_loads_a_weights_path(inception_weights):
    extractor = build_extractor("inception", inception_weights=str(inception_weights))
    assert isinstance(extractor, InceptionExtractor)
    assert not any(p.requires_grad for p in extractor.parameters())
    reference = torch.load(inception_weights, weights_only=True)
    loaded = extractor.net.state_dict()
    assert torch.equal(loaded["fc.weight"], reference["fc.weight"])
    gray = torch.rand(2, 1, 28, 28) * 2 - 1  # MNIST-like: gray, 28x28, [-1, 1]
    features, logits = extractor.extract(gray, (-1.0, 1.0))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all()


def test_missing_or_foreign_inception_weights_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_inception(tmp_path / "nope.pth")
    message = str(err.value)
    assert "metrics.inception_weights=" in message and "internet" in message  # both options
    junk = tmp_path / "junk.pth"
    torch.save({"conv.weight": torch.zeros(1)}, junk)
    with pytest.raises(ConfigError, match="does not hold InceptionV3"):
        build_inception(junk)


class _Payload:
    def __reduce__(self):  # what a malicious pickle would do on load
        return (print, ("pwned",))


def test_inception_weights_are_never_unpickled_unsafely(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as handle:
        pickle.dump({"fc.weight": _Payload()}, handle)
    with pytest.raises(ConfigError, match="not a plain state dict"):
        build_inception(evil)


def test_offline_without_weights_says_both_options(tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(fidelity, "load_state_dict_from_url", offline)
    with pytest.raises(ConfigError) as err:
        build_inception(None)
    message = str(err.value)
    assert "could not be downloaded" in message
    assert "metrics.inception_weights=/path/to/" in message and "internet access" in message
