"""File-system faults met by the real apps, on real file systems: each gives one ``Error:`` line
(no traceback) with the documented exit code, and a run stopped mid-training keeps its last
good checkpoint loadable and leaves no temporary file (docs/safety.md).

Faults during training are subprocess runs of ``train.py`` (tiny MLP GAN, a few real MNIST
batches, ``logger=csv``/``none``, ``metrics=none``) with a test callback that breaks the disk
at a given batch (:class:`tests.helpers.DiskFault`); faults found before anything runs call
each app's ``main([...])`` in-process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys

import pytest
from PIL import Image

from gan_lightning import evaluate, generate, report
from gan_lightning import train as train_app
from gan_lightning.metrics import train_classifier
from gan_lightning.runtime.checkpoints import read_checkpoint
from gan_lightning.runtime.filesystem import STORAGE_STOP_EXIT
from tests.conftest import REPO
from tests.helpers import TINY, one_epoch_of, tiny_checkpoint


@pytest.fixture(autouse=True)
def own_log_handlers():
    """An in-process app run leaves Hydra's log handlers on the root logger, bound to this
    test's captured streams; the next test must not write into those closed streams."""
    before = list(logging.root.handlers)
    yield
    for handler in [h for h in logging.root.handlers if h not in before]:
        logging.root.removeHandler(handler)
        with contextlib.suppress(OSError, ValueError):
            handler.close()


def train(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tiny_run(mnist_dir, run_dir, batches: int, *extra: str) -> list[str]:
    return [
        *one_epoch_of(batches),
        *TINY["gan"][1:],
        f"paths.data_dir={mnist_dir}",
        f"hydra.run.dir={run_dir}",
        "metrics=none",
        "callbacks.interpolation=null",
        *extra,
    ]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


def one_error(out: subprocess.CompletedProcess | str) -> str:
    """The single ``Error:`` line of a run, checked to come without a traceback."""
    text = out if isinstance(out, str) else out.stdout + out.stderr
    lines = error_lines(text)
    assert len(lines) == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return lines[0]


def temporaries(folder) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if ".tmp" in p.name or "write-probe" in p.name)


# --------------------------------------------------------------------------- during training
@pytest.mark.slow
def test_disk_full_while_checkpointing_stops_cleanly(mounts, mnist_dir):
    """The disk fills up at the end of batch 3, just before its checkpoint (Lightning runs
    checkpoint callbacks last): exit 74, one line naming the write, the space it needs and
    last.ckpt, which still loads and holds batch 2. (A mount cannot be remounted read-only
    mid-run: the kernel refuses while the run holds files open for writing.)"""
    run_dir = mounts.tmpfs("run", "16m")
    out = train(
        tiny_run(
            mnist_dir,
            run_dir,
            8,
            "logger=csv",
            "callbacks.model_checkpoint.every_n_train_steps=1",
            "+callbacks.fault._target_=tests.helpers.DiskFault",
            f"+callbacks.fault.path={run_dir}",
            "+callbacks.fault.at_batch=3",
        )
    )
    line = one_error(out)
    assert out.returncode == STORAGE_STOP_EXIT, line
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"Writing the checkpoint {last} failed: no space left on the device" in line
    assert "needs about" in line and "free there" in line
    assert f"The last good checkpoint is {last}" in line and "resume=auto" in line
    state = read_checkpoint(last)  # loadable, ours, and the state of batch 2
    assert state["gan_lightning"]["batches_seen"] == 2
    assert temporaries(run_dir) == []


@pytest.mark.slow
def test_full_disk_under_pictures_and_log_warns_once_and_trains_on(mounts, mnist_dir, tmp_path):
    """Pictures and train.log are not essential: with their disk full the run finishes (exit 0)
    with one warning, no traceback and no half-written PNG; checkpoints and results.json live
    on another disk and are complete."""
    run_dir = mounts.tmpfs("run", "16m")
    safe = tmp_path / "safe"
    out = train(
        tiny_run(
            mnist_dir,
            run_dir,
            3,
            "trainer.max_epochs=2",
            "logger=none",
            f"callbacks.model_checkpoint.dirpath={safe}/checkpoints",
            f"callbacks.run_results.path={safe}/results.json",
            "+callbacks.fault._target_=tests.helpers.DiskFault",
            f"+callbacks.fault.path={run_dir}",
            "+callbacks.fault.at_batch=1",
        )
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert text.count("Training goes on without them") == 1, text[-3000:]
    # (train.log may or may not hit the full disk: its last page often still has room; the
    # warn-once of a log file is tested in test_filesystem.py)
    assert "Traceback" not in text and "Logging error" not in text
    for png in run_dir.rglob("*.png"):
        Image.open(png).verify()  # nothing half-written
    assert read_checkpoint(safe / "checkpoints" / "last.ckpt")["gan_lightning"]["batches_seen"] == 6
    assert '"status": "finished"' in (safe / "results.json").read_text()
    assert temporaries(run_dir) == [] and temporaries(safe) == []


@pytest.mark.slow
def test_full_disk_under_the_csv_log_stops_naming_it(mounts, mnist_dir, tmp_path):
    """A logger's file is essential: with the disk full before ``metrics.csv`` is first
    written (end of epoch 0, before its checkpoint), the run stops (exit 74) naming it."""
    run_dir = mounts.tmpfs("run", "16m")
    safe = tmp_path / "safe"
    out = train(
        tiny_run(
            mnist_dir,
            run_dir,
            3,
            "logger=csv",
            "trainer.log_every_n_steps=1",
            f"callbacks.model_checkpoint.dirpath={safe}/checkpoints",
            f"callbacks.run_results.path={safe}/results.json",
            "+callbacks.fault._target_=tests.helpers.DiskFault",
            f"+callbacks.fault.path={run_dir}",
            "+callbacks.fault.at_batch=1",
        )
    )
    line = one_error(out)
    assert out.returncode == STORAGE_STOP_EXIT, line
    assert "Training stopped: Writing " in line and "metrics.csv failed: no space left" in line
    assert f"There is no complete checkpoint in {safe / 'checkpoints'}" in line
    assert temporaries(safe) == []


@pytest.mark.slow
def test_checkpoint_folder_replaced_by_a_file_mid_run(mnist_dir, tmp_path):
    """A path that disappears mid-run (the checkpoints folder deleted, a file in its place)."""
    run_dir = tmp_path / "run"
    out = train(
        tiny_run(
            mnist_dir,
            run_dir,
            6,
            "logger=none",
            "callbacks.model_checkpoint.every_n_train_steps=1",
            "+callbacks.fault._target_=tests.helpers.DiskFault",
            f"+callbacks.fault.path={run_dir / 'checkpoints'}",
            "+callbacks.fault.at_batch=2",
            "+callbacks.fault.fault=file_for_folder",
        )
    )
    line = one_error(out)
    assert out.returncode == STORAGE_STOP_EXIT, line
    assert "Training stopped: Writing the checkpoint" in line
    assert f"There is no complete checkpoint in {run_dir / 'checkpoints'}" in line


# --------------------------------------------------------------------------- before training
def test_read_only_log_dir_is_refused_before_hydra_runs(mounts, tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    ro = mounts.read_only(source, "ro")
    code = train_app.main([f"paths.log_dir={ro}/logs", "logger=none", "metrics=none"])
    line = one_error(capsys.readouterr().err)
    assert code == 2
    assert f"Writing to the run directory {ro}/logs/train/runs/" in line
    assert "read-only file system; point paths.log_dir or hydra.run.dir" in line
    assert list(source.iterdir()) == []


def test_run_dir_under_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "logs"
    blocker.write_text("")
    code = train_app.main([f"hydra.run.dir={blocker}/run", "logger=none", "metrics=none"])
    assert code == 2
    assert f"{blocker}/run is not a directory ({blocker} is a file)" in one_error(
        capsys.readouterr().err
    )


def test_data_dir_that_is_a_file_is_refused(tmp_path, capsys):
    data = tmp_path / "data.txt"
    data.write_text("not a folder")
    code = train_app.main(
        [f"paths.data_dir={data}", f"hydra.run.dir={tmp_path / 'run'}", "logger=none"]
    )
    line = one_error(capsys.readouterr().err)
    assert code == 2
    assert f"The data directory (paths.data_dir) {data} is not a directory" in line


@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint\n"])
def test_empty_or_garbage_ckpt_path_is_refused(tmp_path, capsys, content):
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(content)
    code = train_app.main([f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'run'}", "logger=none"])
    line = one_error(capsys.readouterr().err)
    assert code == 2 and str(ckpt) in line
    assert ("is empty (0 bytes" if not content else "is not a gan-lightning checkpoint") in line
    code = generate.main([f"ckpt={ckpt}", f"out={tmp_path / 'x.png'}"])
    assert code == 2 and str(ckpt) in one_error(capsys.readouterr().err)


def test_generate_and_evaluate_refuse_read_only_outputs(mounts, mnist_dir, tmp_path, capsys):
    ckpt = tiny_checkpoint("gan", tmp_path / "tiny", mnist_dir)
    source = tmp_path / "src"
    source.mkdir()
    ro = mounts.read_only(source, "ro")
    code = generate.main([f"ckpt={ckpt}", f"out={ro}/samples.png", "n=4"])
    line = one_error(capsys.readouterr().err)
    assert code == 2 and f"{ro}/samples.png" in line and "read-only file system" in line
    code = generate.main([f"ckpt={ckpt}", f"out={ro}/grids", "format=folder", "n=2"])
    assert code == 2 and "read-only file system" in one_error(capsys.readouterr().err)
    (tmp_path / "dir.png").mkdir()
    code = generate.main([f"ckpt={ckpt}", f"out={tmp_path / 'dir.png'}", "n=4"])
    assert code == 2 and "dir.png is a directory" in one_error(capsys.readouterr().err)
    code = evaluate.main([f"ckpt={ckpt}", f"output={ro}/metrics.json", "device=cpu"])
    line = one_error(capsys.readouterr().err)
    assert code == 2 and f"{ro}/metrics.json" in line and "read-only file system" in line
    code = generate.main([f"ckpt={ckpt}", f"out={tmp_path / 'ok.png'}", "n=4"])
    assert code == 0 and (tmp_path / "ok.png").is_file()


def test_train_classifier_refuses_a_read_only_output(mounts, tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    ro = mounts.read_only(source, "ro")
    code = train_classifier.main([f"output={ro}/digits.pt", f"data_dir={tmp_path}"])
    line = one_error(capsys.readouterr().err)
    assert code == 2 and f"{ro}/digits.pt" in line and "read-only file system" in line
    data = tmp_path / "file"
    data.write_text("")
    code = train_classifier.main([f"data_dir={data}"])
    assert code == 2 and "is not a directory" in one_error(capsys.readouterr().err)


def test_report_refuses_what_is_not_a_sweep(mounts, tmp_path, capsys):
    run = tmp_path / "runs" / "2026-01-01_00-00-00"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    assert report.main([str(run)]) == 2
    assert "is a single run, not a sweep" in one_error(capsys.readouterr().err)
    sweep = tmp_path / "multiruns" / "2026-01-01"
    job = sweep / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    assert report.main([str(job)]) == 2
    assert f"is one job of a sweep, not the sweep; pass its parent: gan-report {sweep}" in (
        one_error(capsys.readouterr().err)
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report.main([str(empty)]) == 2
    assert "is empty (no <job>/.hydra/overrides.yaml): it is not a sweep" in one_error(
        capsys.readouterr().err
    )
    ro = mounts.read_only(tmp_path / "multiruns", "ro")
    assert report.main([str(ro / "2026-01-01")]) == 2
    assert "read-only file system" in one_error(capsys.readouterr().err)
