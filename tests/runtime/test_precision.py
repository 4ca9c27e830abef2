"""bf16 mixed precision on CPU: every model trains and is scored under
``trainer.precision=bf16-mixed``, with the numerically delicate parts in fp32 (the weights and
their optimizer states, D's logits into the BCE, the EMA copy, the metrics' features), and
``trainer.precision=auto`` picks bf16 only where the CPU computes it natively."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.runtime import precision
from gan_lightning.train import build, run
from tests.conftest import SMOKE, compose_config

CASES = {
    "gan": ["model=gan", "model.ema_decay=0.9"],
    "dcgan": [
        "model=dcgan",
        "model.ema_decay=0.9",
        "model.num_classes=10",
        "model.conditioning=projection",
    ],  # fmt: skip
    "vae": ["model=vae"],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_bf16_mixed_trains_and_scores_every_model(case, mnist_dir, tmp_path, one_thread):
    overrides = [o for o in SMOKE if not o.startswith("metrics=")] + [
        *CASES[case],
        "trainer.precision=bf16-mixed",
        "trainer.max_steps=4",
        "+trainer.val_check_interval=4",
        "trainer.check_val_every_n_epoch=null",
        "metrics.num_samples=200",
        "metrics.kid_subset_size=100",
        "metrics.batch_size=100",
        f"paths.data_dir={mnist_dir}",
        "data.batch_size=32",
    ]
    cfg = compose_config(overrides, output_dir=tmp_path)
    scores = run(cfg)
    assert scores, "validation ran and returned its metrics"
    fid = [v for k, v in scores.items() if k.startswith("val/fid")]
    assert fid and all(math.isfinite(v) for v in fid)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    weights = [v for v in ckpt["state_dict"].values() if v.is_floating_point()]
    assert weights and all(v.dtype == torch.float32 for v in weights)  # master weights: fp32
    assert all(torch.isfinite(v).all() for v in weights)
    for opt in ckpt["optimizer_states"]:
        for state in opt["state"].values():
            assert all(v.dtype == torch.float32 for v in state.values() if v.dim() > 0)


def test_gan_losses_and_logged_values_are_fp32_under_autocast():
    """D's logits are cast to fp32 before any loss: under bf16 autocast the hinge loss (a plain
    mean of the logits) and D(x), D(G(z)) would otherwise come out in bf16."""
    from tests.helpers import tiny_gan

    model = tiny_gan(objective="hinge")
    real, fake = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = {**model.d_terms(real, None, fake, None), **model.g_terms(fake, None)}
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(terms)
    assert all(value.dtype == torch.float32 for value in terms.values()), terms


@pytest.mark.parametrize(
    ("flags", "convolutional", "expected"),
    [
        ({"avx512_bf16"}, True, "bf16-mixed"),
        ({"amx_bf16", "amx_tile"}, True, "bf16-mixed"),
        ({"avx512_bf16"}, False, "32-true"),  # MLPs: worse FID, no faster (BENCHMARKS.md)
        ({"avx2", "avx512f"}, True, "32-true"),
        (set(), True, "32-true"),
    ],
)
def test_auto_precision_follows_the_cpus_native_bf16_and_the_nets(
    flags, convolutional, expected, monkeypatch
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    assert precision.resolve_precision("auto", "cpu", convolutional) == expected
    assert precision.resolve_precision("32-true", "cpu", convolutional) == "32-true"
    assert precision.resolve_precision("bf16-mixed", "cpu", convolutional) == "bf16-mixed"


@pytest.mark.parametrize(
    ("bf16", "convolutional", "expected"),
    [(True, True, "bf16-mixed"), (True, False, "32-true"), (False, True, "32-true")],
)
def test_auto_precision_on_cuda_picks_bf16_where_the_gpu_has_it(
    bf16, convolutional, expected, monkeypatch
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: set())
    monkeypatch.setattr(precision, "cuda_native_bf16", lambda: bf16)
    assert precision.resolve_precision("auto", "gpu", convolutional) == expected
    assert precision.resolve_precision("32-true", "gpu", convolutional) == "32-true"


def test_auto_on_cuda_turns_on_tf32_and_cudnn_benchmark_unless_told_otherwise(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", chosen.append)
    trainer: dict = {}
    done = precision.tune_cuda(trainer, matmul_precision=None)
    assert chosen == ["high"] and trainer["benchmark"] is True and len(done) == 2
    chosen.clear()
    trainer = {"deterministic": True}
    assert precision.tune_cuda(trainer, matmul_precision="highest") == []
    assert chosen == [] and "benchmark" not in trainer  # the user's choices stand


@pytest.mark.parametrize("value", ["16-mixed", "16"])
def test_fp16_mixed_is_refused_for_gans_in_one_line_naming_bf16(value, tmp_path):
    cfg = compose_config([*SMOKE, "model=dcgan", f"trainer.precision={value}"], tmp_path)
    with pytest.raises(ConfigError) as err:
        build(cfg)
    message = str(err.value)
    assert f"trainer.precision={value} is not supported for GANs" in message
    assert "trainer.precision=bf16-mixed" in message and "\n" not in message


@pytest.mark.parametrize(
    ("model", "expected", "reason"),
    [
        ("dcgan", "bf16-mixed", "bf16 runs this model at 1.40x the fp32 speed"),
        ("gan", "32-true", "MLP nets lose FID"),
    ],
)
def test_the_default_auto_is_resolved_per_model_before_the_trainer_and_logged(
    model, expected, reason, mnist_dir, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *args: 1.4)
    monkeypatch.setenv("GAN_LIGHTNING_CACHE_DIR", str(tmp_path / "cache"))
    cfg = compose_config([*SMOKE, f"model={model}", f"paths.data_dir={mnist_dir}"], tmp_path)
    assert cfg.trainer.precision == "auto"  # the default
    with caplog.at_level("INFO", logger="gan_lightning.runtime.precision"):
        _, _, trainer = build(cfg)
    assert trainer.precision == expected
    assert f"trainer.precision=auto -> {expected}" in caplog.text and reason in caplog.text


def test_a_bad_precision_is_a_config_error(tmp_path):
    cfg = compose_config([*SMOKE, "trainer.precision=bf17"], output_dir=tmp_path)
    with pytest.raises(ConfigError, match="trainer.precision"):
        build(cfg)


# --------------------------------------------------------------------------- measured auto
def measured_choice(monkeypatch, tmp_path, speedup: float, model=None):
    """choose_precision on a CPU that claims native bf16, with the measurement stubbed."""
    from tests.helpers import tiny_gan

    calls = []
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    monkeypatch.setattr(precision, "has_conv_weights", lambda m: True)
    monkeypatch.setattr(precision, "on_cpu", lambda accelerator: True)
    monkeypatch.setenv("GAN_LIGHTNING_CACHE_DIR", str(tmp_path))

    def measure(*args):
        calls.append(args)
        return speedup

    monkeypatch.setattr(precision, "measure_bf16_speedup", measure)
    model = model if model is not None else tiny_gan()
    return precision.choose_precision("auto", "cpu", model, (1, 4, 4), 64), calls


@pytest.mark.parametrize(("speedup", "expected"), [(0.8, "32-true"), (1.3, "bf16-mixed")])
def test_auto_on_a_bf16_cpu_measures_and_keeps_bf16_only_where_it_pays(
    speedup, expected, monkeypatch, tmp_path
):
    chosen, calls = measured_choice(monkeypatch, tmp_path, speedup)
    assert chosen == expected and len(calls) == 1
    chosen, calls = measured_choice(monkeypatch, tmp_path, 99.0)  # cached: not measured again
    assert chosen == expected and calls == []
    assert list(__import__("json").loads((tmp_path / "precision.json").read_text()).values()) == [
        speedup
    ]


def test_a_cache_that_cannot_be_written_costs_a_measurement_not_the_run(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    chosen, calls = measured_choice(monkeypatch, blocker / "cache", 0.5)
    assert chosen == "32-true" and len(calls) == 1


def test_a_module_without_a_probe_keeps_the_flag_rule(monkeypatch, tmp_path):
    chosen, calls = measured_choice(monkeypatch, tmp_path, 0.5, model=torch.nn.Conv2d(1, 1, 3))
    assert chosen == "bf16-mixed" and calls == []


@pytest.mark.parametrize("model", ["dcgan", "conv_vae"])
def test_the_measurement_changes_nothing_of_the_run(model, tmp_path):
    """Real probes of the DCGAN and the conv VAE: a positive ratio; weights, BatchNorm
    statistics and the global random stream as they were."""
    module = build(compose_config([f"model={model}", *SMOKE], tmp_path))[1]
    before = {k: v.clone() for k, v in module.state_dict().items()}
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    speedup = precision.measure_bf16_speedup(module, (1, 28, 28), 8, repeats=1)
    assert math.isfinite(speedup) and speedup > 0
    assert torch.equal(torch.rand(3), expected)
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in module.parameters())
