"""Fuzzing the command line: random override sets over the documented keys, with valid,
boundary and nonsense values and types. Every one must either train (one fast step) or stop
with the project's own one-line error (exit code 2), never a traceback from inside torch,
Lightning or Hydra. Runs ``train.py``'s real entry point in-process."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gan_lightning.train import main

pytestmark = pytest.mark.slow

NONSENSE = ["abc", "[1,2]", "{a: 1}", "''"]
#: Documented keys -> values a user might type (Hydra syntax), valid and not.
KEYS: dict[str, list[str]] = {
    "model.latent_dim": ["1", "2", "16", "0", "-3", "1.5", "null"],
    "model.d_steps": ["1", "2", "0", "1.5", "-1"],
    "model.g_steps": ["1", "3", "0", "2.5"],
    "model.objective": ["non_saturating", "minimax", "hinge", "least_squares", "wgan", "3"],
    "model.real_label_range": ["[0.9,0.9]", "[0.7,1.0]", "[1.2,1.0]", "[0.5]", "0.9"],
    "model.fake_label_range": ["[0.0,0.3]", "[0.3,0.0]", "[-0.1,0.1]"],
    "model.optimizer_g.lr": ["1e-4", "0", "-1", "null"],
    "model.optimizer_d.lr": ["2e-4", "0.0", "1e9"],
    "model.generator.hidden_sizes": ["[8]", "[8,16]", "[]", "[0]", "[8.5]"],
    "model.discriminator.hidden_sizes": ["[8]", "[16,8]", "[-4]"],
    "model.discriminator.dropout": ["0.0", "0.5", "1.0", "-0.1"],
    "model.generator.batch_norm": ["true", "false", "2"],
    "model.generator.activation": ["relu", "tanh", "gelu"],
    "model.generator.output_activation": ["tanh", "sigmoid", "linear", "softmax"],
    "model.discriminator.spectral_norm": ["true", "false"],
    "model.discriminator.minibatch_std": ["0", "4", "2", "1", "-1", "2.5"],
    "model.discriminator.pack": ["1", "2", "3", "0", "-2"],
    "model.ema_decay": ["null", "0.9", "1.5", "-0.1"],
    "model.ema_start": ["0", "3", "-1"],
    "model.r1_gamma": ["0", "1.0", "-1"],
    "model.r1_every": ["1", "4", "0"],
    "model.augment": ["null", "[translation]", "[color,cutout]", "[flip]", "translation"],
    "model.on_nan": ["stop", "skip_batch", "ignore"],
    "model.grad_clip": ["null", "1.0", "0", "-1"],
    "model.num_classes": ["0", "10", "-2"],
    "model.conditioning": ["none", "acgan", "projection", "cgan"],
    "model.acgan_weight": ["1.0", "-1"],
    "data.batch_size": ["1", "8", "64", "0", "-1", "1.5", "100000"],
    "data.pixel_range": ["[-1,1]", "[0,1]", "[-0.5,0.5]", "[0,2]"],
    "data.val_size": ["0", "100", "0.1", "-1", "70000", "1.5"],
    "data.digits": ["null", "[2]", "[1,7]", "[11]", "[]"],
    "data.num_workers": ["0", "-1"],
    "trainer.max_steps": ["1", "2", "0", "-2"],
    "trainer.max_epochs": ["1", "-1", "-2"],
    "trainer.precision": ["32-true", "bf16-mixed", "bogus", "16-mixed"],
    "trainer.devices": ["1", "8", "0"],
    "trainer.accelerator": ["cpu", "auto", "gpu", "tpu9"],
    "trainer.limit_train_batches": ["1", "0.5", "-1"],
    "trainer.log_every_n_steps": ["1", "0", "-5"],
    "trainer.gradient_clip_val": ["null", "1.0"],
    "callbacks.sample_grid.num_samples": ["1", "16", "0"],
    "callbacks.model_checkpoint.every_n_train_steps": ["0", "1", "-1"],
    "seed": ["0", "42", "null", "-1"],
    "num_threads": ["null", "1", "0"],
    "resume": ["null", "auto", "yes"],
}
#: One fast step of a tiny GAN on real MNIST; a fuzzed key replaces its entry here.
BASE = {
    "model.generator.hidden_sizes": "[16]",
    "model.discriminator.hidden_sizes": "[16]",
    "model.latent_dim": "8",
    "trainer.max_steps": "1",
    "trainer.max_epochs": "1",
    "trainer.limit_val_batches": "1",
    "trainer.num_sanity_val_steps": "0",
    "trainer.accelerator": "cpu",
    "trainer.enable_progress_bar": "false",
    "trainer.enable_model_summary": "false",
    "data.batch_size": "16",
    "metrics": "none",
    "logger": "none",
    "callbacks.interpolation": "null",
    "callbacks.curves": "null",
    "callbacks.sample_gif": "null",
    "num_threads": "1",
}

override_sets = st.lists(
    st.sampled_from(sorted(KEYS)), min_size=1, max_size=3, unique=True
).flatmap(
    lambda keys: st.fixed_dictionaries(
        {key: st.sampled_from([*KEYS[key], *NONSENSE]) for key in keys}
    )
)


@settings(
    max_examples=int(os.environ.get("GAN_LIGHTNING_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,  # the same examples in every CI run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fuzzed=override_sets)
def test_random_overrides_train_or_fail_with_one_clear_line(
    fuzzed, mnist_dir, tmp_path_factory, capfd
):
    run_dir = tmp_path_factory.mktemp("fuzz")
    overrides = {**BASE, "paths.data_dir": str(mnist_dir), **fuzzed}
    argv = [f"{k}={v}" for k, v in overrides.items()] + [f"hydra.run.dir={run_dir}"]
    code = main(argv)
    out, err = capfd.readouterr()
    shown = f"overrides {fuzzed} -> exit {code}\n{err[-2500:]}"
    assert code in (0, 2), shown
    assert "Traceback" not in err + out, shown
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, shown
        assert "Set the environment variable HYDRA_FULL_ERROR" not in err, shown
    else:
        assert (run_dir / "checkpoints" / "last.ckpt").is_file(), shown
