"""The private attributes of other libraries that gan_lightning.runtime.compat relies on still exist.

If one of these fails after an upgrade, fix gan_lightning/runtime/compat.py (the only place that
touches them), not the callers.
"""

from __future__ import annotations

import pytest
import torch
from pytorch_lightning.loggers import WandbLogger

from gan_lightning.runtime import compat


def test_wandb_logger_keeps_init_kwargs_and_an_unstarted_run(tmp_path):
    logger = WandbLogger(project="p", save_dir=str(tmp_path), mode="disabled", offline=True)
    kwargs = compat.wandb_init_kwargs(logger)
    assert isinstance(kwargs, dict) and kwargs["project"] == "p" and kwargs["mode"] == "disabled"
    assert compat.wandb_started_run(logger) is None  # constructing starts nothing
    run = logger.experiment  # the public property starts it
    assert compat.wandb_started_run(logger) is run
    compat.wandb_forget_run(logger)
    assert compat.wandb_started_run(logger) is None
    run.finish()


def test_inception_forward_returns_every_requested_feature(monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity
    from torchmetrics.image.fid import NoTrainInceptionV3

    # Random weights (no download): the call and the shapes are what matter here.
    monkeypatch.setattr(fidelity, "load_state_dict_from_url", lambda *a, **k: None)
    monkeypatch.setattr(
        fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None
    )
    net = NoTrainInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
    images = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        features, logits = compat.inception_features(net, images)
        first_only = net(images)
    assert features.reshape(1, -1).shape == (1, 2048) and logits.reshape(1, -1).shape == (1, 1008)
    torch.testing.assert_close(first_only, features.reshape(1, -1))  # forward: first one only


def test_lightning_ddp_launcher_builds_rank_commands_in_a_swappable_function():
    import inspect

    import pytorch_lightning as pl
    from pytorch_lightning.strategies.launchers import subprocess_script

    original = subprocess_script._hydra_subprocess_cmd
    assert list(inspect.signature(original).parameters) == ["local_rank"]
    # The launcher looks the function up in its module at call time, so swapping it works.
    source = inspect.getsource(subprocess_script._SubprocessScriptLauncher._call_children_scripts)
    assert "_hydra_subprocess_cmd(" in source and "HydraConfig.initialized()" in source
    with compat.ddp_child_command(lambda local_rank: (["cmd", str(local_rank)], "/cwd")):
        assert subprocess_script._hydra_subprocess_cmd(1) == (["cmd", "1"], "/cwd")
    assert subprocess_script._hydra_subprocess_cmd is original

    trainer = pl.Trainer(strategy="ddp", accelerator="cpu", devices=2, logger=False)
    assert isinstance(trainer.strategy.launcher, subprocess_script._SubprocessScriptLauncher)
    assert trainer.strategy.launcher.procs == [] and compat.ddp_child_processes(trainer) == []
    single = pl.Trainer(accelerator="cpu", devices=1, logger=False)
    assert compat.ddp_child_processes(single) == []


def _log_steps(collection, values):
    for value in values:
        collection.log("training_step", "x", torch.tensor(value), on_step=True, on_epoch=True,
                       batch_size=2)  # fmt: skip
    return collection["training_step.x"]


def test_result_metric_fast_path_logs_the_same_values():
    from pytorch_lightning.trainer.connectors.logger_connector.result import (
        _ResultCollection,
        _ResultMetric,
    )

    values = [1.0, 2.5, -3.0]
    compat.speed_up_lightning(enabled=False)
    try:
        assert not getattr(_ResultMetric.to, "gan_lightning_fast_path", False)
        stock = _log_steps(_ResultCollection(training=True), values)
        compat.speed_up_lightning()
        compat.speed_up_lightning()  # idempotent: wrapped once
        assert _ResultMetric.to.__wrapped__ is not None
        assert not getattr(_ResultMetric.to.__wrapped__, "gan_lightning_fast_path", False)
        fast = _log_steps(_ResultCollection(training=True), values)
    finally:
        compat.speed_up_lightning()
    assert fast.compute() == stock.compute() == torch.tensor(sum(values) / 3)
    assert fast.cumulated_batch_size == stock.cumulated_batch_size == 6
    assert fast.meta == stock.meta
    # A metric that is not on the target device still goes through Lightning's own `to`.
    moved = fast.to(torch.device("meta"))
    assert moved.value.device.type == "meta"


def test_nvml_cuda_check_dropped_only_without_a_gpu(monkeypatch):
    import os

    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    compat.speed_up_lightning()
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"  # a GPU: Lightning's choice stays
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    compat.speed_up_lightning()
    assert "PYTORCH_NVML_BASED_CUDA_CHECK" not in os.environ
    compat.speed_up_lightning(enabled=False)  # restored for the A/B of the benchmark
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"


def test_lightning_loops_report_the_epoch_position():
    import pytorch_lightning as pl

    seen: list[tuple[int, bool]] = []

    class Probe(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            seen.append((compat.batches_processed_this_epoch(trainer), compat.epoch_done(trainer)))

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            return (self.w - batch[0]).pow(2).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(3, 1)))
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[Probe()],
    )  # fmt: skip
    trainer.fit(Net(), data)
    # The batch being ended already counts as processed; the last one ends the epoch.
    assert seen == [(1, False), (2, False), (3, True)]


def test_wandb_run_mode_and_run_id_doors(tmp_path):
    logger = WandbLogger(project="p", save_dir=str(tmp_path), offline=True)
    compat.wandb_set_run_id(logger, "abc12345")
    assert logger.version == "abc12345" and compat.wandb_init_kwargs(logger)["id"] == "abc12345"
    run = logger.experiment
    try:
        assert run.id == "abc12345"
        assert compat.wandb_run_is_offline(run)
    finally:
        run.finish()


def test_hydra_state_is_cleared():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gan_lightning.runtime.cli import CONFIG_DIR

    initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3")
    compose(config_name="config")
    assert GlobalHydra.instance().is_initialized()
    compat.clear_hydra_state()
    assert not GlobalHydra.instance().is_initialized()


def test_hydra_argument_parser_reads_config_dirs_and_overrides(capsys):
    args = compat.hydra_arguments(["--config-dir", "/u", "-cn", "mine", "-m", "a=1", "b=x,y"])
    assert args.config_dir == "/u" and args.config_name == "mine" and args.multirun
    assert args.overrides == ["a=1", "b=x,y"] and args.config_path is None
    assert compat.hydra_arguments(["-cd=/u", "a=1"]).config_dir == "/u"
    for flag in ("help", "hydra_help", "cfg", "info", "shell_completion", "experimental_rerun"):
        assert hasattr(args, flag)
    # Refused (or answered) by the parser: None, with nothing printed and no exit.
    assert compat.hydra_arguments(["--no-such-flag"]) is None
    assert compat.hydra_arguments(["--version"]) is None
    assert capsys.readouterr() == ("", "")


def test_foreach_lerp_matches_lerp():
    targets = [torch.zeros(3), torch.ones(2)]
    sources = [torch.ones(3), torch.zeros(2)]
    compat.foreach_lerp_(targets, sources, 0.25)
    torch.testing.assert_close(targets[0], torch.full((3,), 0.25))
    torch.testing.assert_close(targets[1], torch.full((2,), 0.75))


def test_fused_adam_skips_its_step_when_found_inf_is_set():
    weight = torch.nn.Parameter(torch.ones(3))
    adam = torch.optim.Adam([weight], lr=0.1, fused=True)
    assert compat.supports_found_inf(adam)
    assert not compat.supports_found_inf(torch.optim.Adam([weight], lr=0.1, foreach=False))
    weight.grad = torch.full((3,), float("nan"))
    with compat.step_masked_by_found_inf(adam, torch.ones(())):
        adam.step()
    assert not hasattr(adam, "found_inf")
    torch.testing.assert_close(weight.detach(), torch.ones(3))  # nothing applied
    assert float(adam.state[weight]["step"]) == 0.0  # the step count not advanced either
    assert torch.equal(adam.state[weight]["exp_avg"], torch.zeros(3))
    weight.grad = torch.ones(3)
    with compat.step_masked_by_found_inf(adam, torch.zeros(())):
        adam.step()
    assert float(adam.state[weight]["step"]) == 1.0 and (weight.detach() < 1).all()


def test_callback_hooks_fast_path_calls_what_acts_and_skips_no_ops():
    """Lightning's hook dispatcher is swappable (``call._call_callback_hooks``), and the fast
    path calls overridden hooks (class or instance) with Lightning's arguments, skips
    ``pl.Callback``'s no-ops, and leaves a real profiler to Lightning's own function."""
    import inspect
    from types import SimpleNamespace

    import pytorch_lightning as pl
    from pytorch_lightning.profilers import PassThroughProfiler, SimpleProfiler
    from pytorch_lightning.trainer import call

    original = getattr(call._call_callback_hooks, "__wrapped__", call._call_callback_hooks)
    assert list(inspect.signature(original).parameters)[:2] == ["trainer", "hook_name"]
    calls = []

    class Acting(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            calls.append(("class", batch_idx, pl_module))

    quiet = pl.Callback()
    instance_hook = pl.Callback()
    instance_hook.on_train_batch_end = lambda trainer, module, *a: calls.append(("instance", a))
    module = SimpleNamespace(_current_fx_name="before")
    trainer = SimpleNamespace(
        callbacks=[Acting(), quiet, instance_hook],
        lightning_module=module,
        profiler=PassThroughProfiler(),
    )
    fast = compat._callback_hooks_fast_path(original)
    fast(trainer, "on_train_batch_end", None, "batch", 3)
    assert calls == [("class", 3, module), ("instance", (None, "batch", 3))]
    assert module._current_fx_name == "before"
    seen = []
    fast.__wrapped__ = lambda *a, **k: seen.append(a[1])  # what the real profiler gets
    slow = compat._callback_hooks_fast_path(fast.__wrapped__)
    trainer.profiler = SimpleProfiler()
    slow(trainer, "on_train_batch_end", None, "batch", 3)
    assert seen == ["on_train_batch_end"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_any_nonfinite_flags_nan_and_inf_and_leaves_the_values_alone(dtype):
    """GradScaler's check with a scale of 1: NaN or inf anywhere in the list (of mixed dtypes)
    sets the flag, finite values (even huge ones) do not, and no value changes."""
    from gan_lightning.runtime.compat import any_nonfinite

    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(7, generator=g).to(dtype), torch.randn(3, 5, generator=g).double()]
    tensors[0][3] = torch.finfo(dtype).max  # finite: not flagged
    before = [t.clone() for t in tensors]
    flag = any_nonfinite(tensors)
    assert flag.dtype == torch.float32 and flag.shape == () and float(flag) == 0.0
    for bad in (float("nan"), float("inf"), -float("inf")):
        tensors[1][2, 4] = bad
        assert float(any_nonfinite(tensors)) == 1.0
        tensors[1][2, 4] = before[1][2, 4]
    for t, b in zip(tensors, before, strict=True):
        assert torch.equal(t, b)
