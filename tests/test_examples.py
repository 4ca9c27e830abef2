"""examples/my_gan end to end, as a user runs it: a package of their own (a residual generator,
a forward-only discriminator, a DataModule on shapes it draws itself) and a config folder
composed with the built-in configs through ``--config-dir``. Train, SIGKILL, ``resume=auto``,
``gan-generate`` and ``gan-evaluate`` with ``trust=[my_gan]``, a 2-job multirun and its sweep
report. Real subprocesses, tiny nets; the package is importable through PYTHONPATH only (not
pip-installed)."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "my_gan"
CONFIGS = EXAMPLE / "configs"
#: 256 shapes, 64 held out, batches of 16: 12-batch epochs; 24 batches = 2 epochs.
TINY = [
    "experiment=my_gan_shapes",
    "data.num_samples=256",
    "data.val_size=64",
    "data.batch_size=16",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "trainer.max_epochs=-1",
    "trainer.limit_val_batches=1",
    "trainer.accelerator=cpu",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_model_summary=false",
    "seed=3",
    "num_threads=1",
    "logger=none",
    "metrics=none",
    "callbacks.model_checkpoint.every_n_train_steps=5",
    "callbacks.progress.style=lines",
    "callbacks.progress.log_every_n_batches=1",
    "callbacks.interpolation=null",
    "callbacks.curves=null",
    "callbacks.sample_gif=null",
]


def env() -> dict[str, str]:
    """examples/my_gan on PYTHONPATH: importable without pip-installing it."""
    path = os.pathsep.join(p for p in (str(EXAMPLE), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}


def python(module: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def train(*args: str, cwd: Path = REPO, multirun: bool = False) -> subprocess.CompletedProcess:
    flags = ["-m"] if multirun else []  # Hydra's flags come before the overrides
    return python(
        "gan_lightning.train", *flags, "--config-dir", str(CONFIGS), *TINY, *args, cwd=cwd
    )


def ok(result: subprocess.CompletedProcess) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    return out


def refused_without_trust(result: subprocess.CompletedProcess) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    assert "my_gan.nets.ResGenerator" in out and "trust=[my_gan]" in out
    assert "Traceback" not in out


def kill_at(args: list[str], batch: int, cwd: Path) -> str:
    """Start training; SIGKILL it once the progress line of real batch ``batch`` is printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gan_lightning.train", "--config-dir", str(CONFIGS), *TINY, *args],
        cwd=cwd,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed, sent = [], False
    for line in process.stdout:
        printed.append(line)
        found = re.search(r"epoch (\d+).*\| batch (\d+)/", line)
        if not sent and found and int(found.group(1)) * 12 + int(found.group(2)) >= batch:
            process.send_signal(signal.SIGKILL)
            sent = True
    assert process.wait(timeout=600) == -signal.SIGKILL and sent, "".join(printed)[-3000:]
    return "".join(printed)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run of the example killed mid-way (SIGKILL) and continued with resume=auto."""
    root = tmp_path_factory.mktemp("my_gan")
    logs = f"paths.log_dir={root / 'logs'}"
    kill_at([logs, "trainer.max_steps=24"], batch=18, cwd=root)  # saved at 5, 10, 12, 15
    [run_dir] = (root / "logs" / "my_gan_shapes" / "runs").iterdir()
    last = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["gan_lightning"]["batches_seen"] == 15

    # The checkpoint names my_gan's classes: resuming it needs the loader's word for them,
    # which the example's experiment file gives (trust: [my_gan]); taken back, it is refused.
    refused_without_trust(train(logs, "trainer.max_steps=24", "resume=auto", "trust=[]", cwd=root))
    out = ok(train(logs, "trainer.max_steps=24", "resume=auto", cwd=root))
    assert f"continuing the run in {run_dir}" in out
    assert f"Resuming from {last}: batch 15 (epoch 1)" in out
    assert "Trained on 24 real batches" in out
    assert torch.load(last, weights_only=True)["gan_lightning"]["batches_seen"] == 24
    return run_dir


def test_train_uses_the_users_nets_and_data(trained):
    saved = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    config = saved["gan_lightning"]["config"]
    assert config["model"]["generator"]["_target_"] == "my_gan.nets.ResGenerator"
    assert config["model"]["discriminator"]["_target_"] == "my_gan.nets.PlainDiscriminator"
    assert config["data"]["_target_"] == "my_gan.data.ShapesDataModule"
    assert config["trainer"]["max_epochs"] == -1  # built-in groups composed underneath
    assert (trained / "samples").is_dir()


def test_generate_with_trust(trained, tmp_path):
    ckpt = f"ckpt={trained / 'checkpoints' / 'last.ckpt'}"
    refused_without_trust(python("gan_lightning.generate", ckpt, f"out={tmp_path / 'x.png'}"))
    out = tmp_path / "samples.png"
    ok(python("gan_lightning.generate", ckpt, "trust=[my_gan]", "n=16", f"out={out}"))
    assert out.stat().st_size > 0
    # Or rebuilt from the user's own config: only the weights come from the checkpoint.
    own = tmp_path / "own.png"
    ok(
        python(
            "gan_lightning.generate",
            ckpt,
            f"model_config={trained / '.hydra' / 'config.yaml'}",
            "n=16",
            f"out={own}",
        )
    )
    assert own.read_bytes() == out.read_bytes()


def test_evaluate_with_trust(trained, tmp_path):
    """Offline scoring: the digits extractor's network on 1x28x28 gray images. A fixed,
    untrained copy stands in for the MNIST-trained one (which needs MNIST to train once);
    the pipeline is the same, the numbers only compare runs scored with that file."""
    from gan_lightning.metrics.classifier import DigitClassifier, save_classifier

    torch.manual_seed(0)
    classifier = save_classifier(DigitClassifier(), tmp_path / "features.pt")
    args = [
        f"ckpt={trained / 'checkpoints' / 'last.ckpt'}",
        "metrics.extractor=digits",
        f"metrics.classifier_path={classifier}",
        "metrics.num_samples=64",
        "metrics.kid_subset_size=32",
        "metrics.kid_subsets=5",
        f"output={tmp_path / 'metrics.json'}",
        "device=cpu",
    ]
    refused_without_trust(python("gan_lightning.evaluate", *args))
    out = ok(python("gan_lightning.evaluate", *args, "trust=[my_gan]"))
    import json

    [row] = json.loads((tmp_path / "metrics.json").read_text())["results"]
    assert row["batches_seen"] == 24 and row["extractor"] == "digits"
    assert row["fid_digits"] > 0 and "FID" in out


def test_multirun_of_two_jobs_and_its_sweep_report(tmp_path):
    sweep = tmp_path / "sweep"
    ok(
        train(
            "model.optimizer_g.lr=1e-4,1e-3",
            "trainer.max_steps=6",
            "callbacks.sample_grid=null",
            f"hydra.sweep.dir={sweep}",
            cwd=tmp_path,
            multirun=True,
        )
    )
    (sweep / "summary.csv").unlink()
    ok(python("gan_lightning.report", str(sweep)))  # gan-report rebuilds it
    with (sweep / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model.optimizer_g.lr"] for r in rows] == ["0.0001", "0.001"]
    assert all(r["status"] == "finished" for r in rows)
    assert "| job | model.optimizer_g.lr |" in (sweep / "summary.md").read_text()


def test_the_package_builds_as_its_own_wheel(tmp_path):
    """``pip install -e examples/my_gan`` works from its own pyproject: the wheel pip builds
    holds the package (and its configs stay a folder next to it, given with --config-dir)."""
    import shutil
    import zipfile

    source = shutil.copytree(EXAMPLE, tmp_path / "src")  # setuptools writes build files there
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    [wheel] = tmp_path.glob("my_gan-0.1.0-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"my_gan/nets.py", "my_gan/data.py", "my_gan/__init__.py"} <= set(names)
