"""Loggers as a user gets them: what W&B, TensorBoard and CSV actually recorded on disk.

One real-MNIST smoke run logs to all three loggers at once (``logger=[wandb,tensorboard,csv]``);
the tests read each one's files back: the W&B offline ``run-<id>.wandb`` records (wandb 0.31
writes no summary/config files offline), TensorBoard's event file, CSV's columns.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_lightning.runtime.loggers import (
    WandbLogger,
    default_group,
    default_run_name,
    resolve_wandb_mode,
    wandb_credentials_available,
)
from gan_lightning.train import run
from tests.conftest import REPO, SMOKE, compose_config

GRID = 8 * 28 + 9 * 2  # 8x8 grid of 28x28 digits with 2-pixel padding: 242


# --------------------------------------------------------------------------- W&B records
def wandb_records(path: Path) -> list:
    """Every record of a ``.wandb`` file: a 7-byte header, then LevelDB-style chunks
    (crc32 u32, length u16, type u8: 1 full, 2 first, 3 middle, 4 last) in 32 KiB blocks,
    each chunk a piece of a serialized ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1, "not a W&B transaction log"
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a chunk header is zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            pos += left - 7
            continue
        chunk, pos = data[pos : pos + length], pos + length
        if kind == 1:
            pending, payload = b"", chunk
        elif kind in (2, 3):
            pending += chunk
            continue
        else:
            payload, pending = pending + chunk, b""
        record = pb.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def finished_records(run_dir: Path, timeout: float = 60.0) -> list:
    """The records of a finished run. ``wandb.finish()`` returns before W&B's service process
    has written everything offline, so wait for the run's final ``exit`` record."""
    [log_file] = run_dir.glob("run-*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        records = wandb_records(log_file)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{log_file} has no exit record"
        time.sleep(0.5)


def wandb_run_contents(run_dir: Path) -> dict:
    """history (key -> values), config (key -> value), run (the Run record) of an offline run."""
    history, config, runs = defaultdict(list), {}, []
    for record in finished_records(run_dir):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            for item in record.history.item:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                history[key].append(json.loads(item.value_json))
        elif kind == "run":
            runs.append(record.run)
            for item in record.run.config.update:
                config[item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                config[item.key] = json.loads(item.value_json)
    return {"history": history, "config": config, "run": runs[0]}


# --------------------------------------------------------------------------- the run
@pytest.fixture(scope="module")
def logged_run(mnist_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("logged_run")
    overrides = [o for o in SMOKE if not o.startswith("logger=")] + [
        "logger=[wandb,tensorboard,csv]",
        "trainer.limit_train_batches=3",  # the epoch completes: validation and epoch means
        "trainer.log_every_n_steps=1",
        "metrics=none",  # FID/KID have their own tests; here they would only cost minutes
        f"data.data_dir={mnist_dir}",
    ]
    metrics = run(compose_config(overrides, out))
    return out, metrics


def test_wandb_offline_run_has_scalars_config_and_images(logged_run):
    out, _ = logged_run
    [run_dir] = (out / "wandb").glob("offline-run-*")
    contents = wandb_run_contents(run_dir)
    history = contents["history"]
    losses = [v for v in history["train/d_loss_step"]]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert len(history["train/g_loss_step"]) == 3 and history["train/d_real_step"]
    assert history["val/d_loss"] and history["train/d_loss_epoch"]
    assert history["lr/generator"] == [pytest.approx(2e-4)]

    config = contents["config"]
    assert config["model"]["_target_"] == "gan_lightning.modules.gan.GAN"
    assert config["model"]["generator"]["hidden_sizes"] == [128, 256, 512]
    assert config["trainer"]["max_steps"] == 3
    assert config["run"]["output_dir"] == str(out)
    assert len(config["run"]["git_commit"]) == 40

    # The sample grid (uint8, not black), interpolations and curves as media files.
    media = run_dir / "files" / "media" / "images"
    [grid] = (media / "samples").glob("fixed_noise_*.png")
    pixels = np.asarray(Image.open(grid).convert("L"))
    assert pixels.shape == (GRID, GRID)
    assert pixels.max() > 100, "float images in [0, 1] would have been cast to black"
    on_disk = Image.open(out / "samples" / "epoch_000_step_0000003.png").convert("L")
    assert np.array_equal(pixels, np.asarray(on_disk)), "W&B got the same picture as the PNG"
    assert list((media / "interpolation").glob("spherical_*.png"))
    assert list((media / "curves").glob("losses_*.png"))
    assert list((run_dir / "files" / "media" / "videos" / "samples").glob("all_epochs_*.gif"))
    # History rows reference the images by type and file (nested keys: <key>/<field>).
    assert history["samples/fixed_noise/_type"] == ["images/separated"]
    assert history["interpolation/linear/_type"] == ["images/separated"]


def test_tensorboard_event_file_has_scalars_and_images(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = logged_run
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/d_loss_step", "train/g_loss_step", "val/d_loss"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/d_loss_step")] == [0, 1, 2]
    assert {"samples/fixed_noise", "interpolation/linear", "curves/losses"} <= set(tags["images"])
    [image] = events.Images("samples/fixed_noise")
    assert (image.width, image.height) == (GRID, GRID)
    assert image.step == 3  # the step scalars use (real batches), not 2 optimizer steps/batch


def test_csv_has_the_metric_columns_and_the_config(logged_run):
    out, _ = logged_run
    [metrics_csv] = (out / "csv").rglob("metrics.csv")
    header = metrics_csv.read_text().splitlines()[0].split(",")
    for column in (
        "epoch",
        "step",
        "train/d_loss_step",
        "train/g_loss_step",
        "train/d_real_step",
        "train/d_fake_step",
        "train/d_loss_epoch",
        "val/d_loss",
        "lr/generator",
        "lr/discriminator",
    ):
        assert column in header, column
    hparams = (metrics_csv.parent / "hparams.yaml").read_text()
    assert "gan_lightning.modules.gan.GAN" in hparams and "git_commit" in hparams


def test_run_returns_metrics_and_logger_none_logs_nothing(logged_run, mnist_dir, tmp_path):
    _, metrics = logged_run
    assert "train/d_loss_epoch" in metrics and "val/d_loss" in metrics
    run(compose_config([*SMOKE, "metrics=none", f"data.data_dir={mnist_dir}"], tmp_path))
    assert not (tmp_path / "wandb").exists() and not (tmp_path / "csv").exists()
    assert list((tmp_path / "samples").glob("epoch_*.png")), "pictures do not need a logger"


# --------------------------------------------------------------------------- multirun
@pytest.mark.slow
def test_multirun_logs_one_wandb_run_per_job_in_one_group(mnist_dir, tmp_path):
    """Without wandb.finish() per job, every job of a multirun logs into the first run."""
    overrides = [o for o in SMOKE if not o.startswith("logger=")] + [
        "logger=wandb",
        "metrics=none",
        f"paths.data_dir={mnist_dir}",
        f"hydra.sweep.dir={tmp_path}",
        "seed=1,2",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    out = subprocess.run(
        [sys.executable, "train.py", "-m", *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = [wandb_run_contents(d)["run"] for d in sorted(tmp_path.glob("*/wandb/offline-run-*"))]
    assert len(runs) == 2
    assert runs[0].run_id != runs[1].run_id
    assert runs[0].run_group == runs[1].run_group == f"train-{tmp_path.name}"
    assert sorted(r.display_name for r in runs) == ["gan-mnist-0", "gan-mnist-1"]
    assert "wandb sync" in out.stdout + out.stderr


# --------------------------------------------------------------------------- mode choice
@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "NETRC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return monkeypatch


def test_offline_without_a_key_online_with_one(no_wandb_env, tmp_path):
    assert not wandb_credentials_available()
    assert resolve_wandb_mode(None) == "offline"
    no_wandb_env.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_wandb_mode(None) == "online"
    assert resolve_wandb_mode("disabled") == "disabled"  # an explicit choice wins


def test_netrc_login_counts_as_a_key(no_wandb_env, tmp_path):
    (tmp_path / ".netrc").write_text(
        "machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n"
    )
    (tmp_path / ".netrc").chmod(0o600)
    assert wandb_credentials_available()
    assert resolve_wandb_mode(None) == "online"


def test_users_wandb_mode_is_respected(no_wandb_env):
    no_wandb_env.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode(None) is None  # wandb reads $WANDB_MODE itself
    with pytest.raises(Exception, match="logger.wandb.mode"):
        resolve_wandb_mode("sometimes")


def test_failed_online_start_falls_back_to_offline(no_wandb_env, tmp_path):
    """A key but no reachable server: after init_timeout the run continues offline."""
    no_wandb_env.setenv("WANDB_API_KEY", "k" * 40)
    no_wandb_env.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    no_wandb_env.setenv("WANDB_SILENT", "true")
    assert resolve_wandb_mode(None) == "online"  # what the logger tries first
    logger = WandbLogger(save_dir=tmp_path, init_timeout=2)
    logger.log_metrics({"x": 1.0}, step=0)
    assert logger.offline_dir is not None and logger.offline_dir.is_dir()
    assert "wandb sync" in logger.sync_hint()
    logger.experiment.finish()


def test_names_and_groups_from_the_hydra_job():
    single = {"experiment": None, "model": "dcgan", "data": "mnist", "multirun": False}
    assert default_run_name(single) == "dcgan-mnist"
    assert default_group(single, "train") is None
    sweep = {
        "experiment": "seed003_bn_ablation",
        "model": "dcgan",
        "data": "mnist",
        "multirun": True,
        "job_num": 2,
        "sweep_dir": "logs/train/multiruns/2026-01-01_10-00-00",
    }
    assert default_run_name(sweep) == "seed003_bn_ablation-2"
    assert default_group(sweep, "train") == "seed003_bn_ablation-2026-01-01_10-00-00"
    assert default_run_name({}) is None


# --------------------------------------------------------------------------- held run id
HOLDER = """
import sys, time, wandb
wandb.init(mode="offline", id=sys.argv[1], dir=sys.argv[2], project="p", resume="allow")
print("started", flush=True)
time.sleep(120)
"""

CONTINUER = """
import logging, os, signal, subprocess, sys, wandb
logging.basicConfig(level=logging.WARNING)
from gan_lightning.runtime.loggers import WandbLogger
wandb.setup()  # one wandb-core service, inherited by the child through $WANDB_SERVICE
holder = subprocess.Popen([sys.executable, "-c", sys.argv[1], "held0001", sys.argv[2]],
                          stdout=subprocess.PIPE, text=True)
holder.stdout.readline()
os.kill(holder.pid, signal.SIGKILL)  # the service never hears that the run ended
holder.wait()
logger = WandbLogger(save_dir=sys.argv[2], project="p", id="held0001", mode="offline")
logger.log_hyperparams({"a": 1})
print("RUN", logger.experiment.id, logger.version)
"""


@pytest.mark.slow
def test_a_run_id_still_held_by_a_killed_process_falls_back_to_a_new_run(tmp_path):
    """resume=auto after a SIGKILL continues the W&B id; when the service that served the
    killed process still holds it ("run ID ... is in use"), training logs to a new run."""
    env = {**os.environ, "WANDB_SILENT": "true"}
    env.pop("WANDB_SERVICE", None)
    out = subprocess.run(
        [sys.executable, "-c", CONTINUER, HOLDER, str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "W&B could not continue run held0001 (run ID held0001 is in use)" in out.stderr
    run_id, version = out.stdout.split("RUN ")[1].split()
    assert run_id == version != "held0001"
    assert list(tmp_path.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))


def test_lightning_advertisement_and_library_deprecation_are_kept_off_the_console(caplog):
    import logging
    import warnings

    from pytorch_lightning.utilities import rank_zero_info

    from gan_lightning.runtime.loggers import quiet_library_noise

    quiet_library_noise()
    quiet_library_noise()  # idempotent: one filter
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    assert len([f for f in logger.filters if type(f).__name__ == "_DropLibraryNoise"]) == 1
    with caplog.at_level(logging.INFO, logger="pytorch_lightning.utilities.rank_zero"):
        rank_zero_info("💡 Tip: For seamless cloud logging ... litlogger")
        rank_zero_info("GPU available: False, used: False")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["GPU available: False, used: False"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_library_noise()  # its filters go on top of the "default" one just set
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1
        )
        warnings.warn("something else", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]


def test_an_offline_run_builds_no_analytics_client(tmp_path):
    """wandb.init(mode="offline") alone leaves wandb's process settings online, and the first
    log then builds its OpenTelemetry exporters (0.8 s inside the training loop, aimed at the
    server): an offline run of the project never imports them."""
    script = (
        "import sys\n"
        "from gan_lightning.runtime.loggers import WandbLogger\n"
        f"logger = WandbLogger(save_dir={str(tmp_path)!r}, mode='offline')\n"
        "logger.log_metrics({'x': 1.0}, step=0)\n"
        "logger.log_metrics({'x': 2.0}, step=1)\n"
        "import wandb\n"
        "print(wandb.setup().settings.mode, 'opentelemetry.sdk.metrics' in sys.modules)\n"
        "logger.experiment.finish()\n"
    )
    env = {**os.environ, "WANDB_SILENT": "true"}
    env.pop("WANDB_MODE", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["offline", "False"], done.stdout + done.stderr[-2000:]
