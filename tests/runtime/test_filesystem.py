"""The pieces of file-system fault handling, on real file systems (runtime/filesystem.py)."""

from __future__ import annotations

import contextlib
import errno
import logging

import pytest
import torch
from PIL import Image

from gan_lightning.errors import FileSystemError
from gan_lightning.runtime.checkpoints import AtomicCheckpointIO
from gan_lightning.runtime.cli import user_error
from gan_lightning.runtime.filesystem import (
    STORAGE_STOP_EXIT,
    NonEssentialWrites,
    atomic_write_text,
    check_input_dir,
    check_input_file,
    check_output_file,
    check_writable_dir,
    describe,
    first_fault,
    last_good_checkpoint,
    path_of,
    quiet_log_file_errors,
    state_nbytes,
    training_stopped,
)
from tests.helpers import fill_disk


def leftovers(folder):
    """Temporary files a write could leave behind."""
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or "probe" in p.name)


# --------------------------------------------------------------------------- up-front checks
def test_writable_dir_refuses_a_file_in_the_path(tmp_path):
    blocker = tmp_path / "logs"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(FileSystemError, match=r"logs/train is not a directory \(.*logs is a file"):
        check_writable_dir(blocker / "train", "the run directory")
    with pytest.raises(FileSystemError, match="is not a directory; use a folder"):
        check_writable_dir(blocker, "the run directory", fix="use a folder", create=False)


def test_writable_dir_probes_a_read_only_mount(mounts, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    ro = mounts.read_only(source, "ro")
    with pytest.raises(FileSystemError) as caught:
        check_writable_dir(ro / "runs" / "x", "the run directory", "point paths.log_dir elsewhere")
    line = str(caught.value)
    assert "read-only file system" in line and "point paths.log_dir elsewhere" in line
    assert str(ro / "runs" / "x") in line and "\n" not in line
    assert caught.value.exit_code == 2
    assert check_writable_dir(source / "ok", "a folder") == source / "ok"  # the source is fine
    assert leftovers(source) == []


def test_writable_dir_sees_a_full_disk(mounts):
    disk = mounts.tmpfs("full", "256k")
    fill_disk(disk)
    with pytest.raises(FileSystemError, match="no space left on the device"):
        check_writable_dir(disk, "the run directory")
    assert leftovers(disk) == []


def test_output_file_and_input_checks(tmp_path):
    (tmp_path / "grid.png").mkdir()
    with pytest.raises(FileSystemError, match="grid.png is a directory"):
        check_output_file(tmp_path / "grid.png", "the output file (out=)")
    assert check_output_file(tmp_path / "new" / "a.png", "x") == tmp_path / "new" / "a.png"
    data = tmp_path / "data"
    data.write_text("")
    with pytest.raises(FileSystemError, match="data is not a directory; point"):
        check_input_dir(data, "the data directory (paths.data_dir)", "point it at a folder")
    with pytest.raises(FileSystemError, match=r"is empty \(0 bytes"):
        check_input_file(data, "the checkpoint")
    with pytest.raises(FileSystemError, match="does not exist"):
        check_input_file(tmp_path / "nope.ckpt", "the checkpoint")
    with pytest.raises(FileSystemError, match="is a directory"):
        check_input_file(tmp_path, "the checkpoint")


# --------------------------------------------------------------------------- messages
def test_describe_names_the_path_the_action_and_the_fix():
    err = OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x.png")
    assert describe(err, "Writing the picture") == (
        "Writing the picture /mnt/ro/x.png failed: read-only file system; use a writable folder "
        "(or remount it read-write)."
    )
    assert "try elsewhere" in describe(OSError(errno.ENOSPC, "x"), "Saving", "/a", "try elsewhere")


def test_cli_turns_file_system_oserrors_into_user_errors():
    err = user_error(NotADirectoryError(errno.ENOTDIR, "Not a directory", "/data/x/raw"))
    assert isinstance(err, FileSystemError)
    assert "/data/x/raw" in str(err) and "is a file, not a directory" in str(err)
    assert user_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is None
    wrapped = RuntimeError("cleanup failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device", "/run/results.json")
    assert "no space left" in str(user_error(wrapped))


def test_training_stopped_names_the_last_good_checkpoint(tmp_path):
    (tmp_path / "epoch_000.ckpt").write_bytes(b"x")
    (tmp_path / ".last.ckpt.tmp-123").write_bytes(b"")  # never a "good" checkpoint
    fault = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "results.json"))
    later = RuntimeError("while cleaning up")
    later.__context__ = fault
    assert first_fault(later) is fault
    stop = training_stopped(first_fault(later), tmp_path)
    assert stop.exit_code == STORAGE_STOP_EXIT
    assert str(stop).startswith(f"Training stopped: Writing {tmp_path / 'results.json'} failed")
    assert f"The last good checkpoint is {tmp_path / 'epoch_000.ckpt'}" in str(stop)
    assert last_good_checkpoint(tmp_path / "missing") is None
    assert "There is no complete checkpoint in" in str(
        training_stopped(fault, tmp_path / "missing")
    )


def test_a_write_through_a_file_object_is_named_by_its_file(tmp_path):
    def write_row(handle):  # a csv writer's write: the OSError carries no filename
        raise OSError(errno.ENOSPC, "No space left on device")

    with open(tmp_path / "metrics.csv", "w") as handle:
        try:
            write_row(handle)
        except OSError as caught:
            err = caught
    assert path_of(err) == str(tmp_path / "metrics.csv")
    stop = str(training_stopped(err, tmp_path))
    assert f"Writing {tmp_path / 'metrics.csv'} failed: no space left" in stop
    assert "There is no complete checkpoint in" in stop


# --------------------------------------------------------------------------- full disks
def test_checkpoint_write_on_a_full_disk_keeps_the_old_one(mounts):
    disk = mounts.tmpfs("ckpt", "3m")
    io = AtomicCheckpointIO()
    small = {"state_dict": {"w": torch.ones(1000)}, "epoch": 0}
    io.save_checkpoint(small, disk / "last.ckpt")
    big = {"state_dict": {"w": torch.ones(1_000_000)}, "epoch": 1}  # 4 MB > the disk
    assert state_nbytes(big) == 4_000_000
    with pytest.raises(FileSystemError) as caught:
        io.save_checkpoint(big, disk / "last.ckpt")
    line = str(caught.value)
    assert f"Writing the checkpoint {disk / 'last.ckpt'} failed: no space left" in line
    assert "needs about 4.0 MB" in line and "free there" in line
    assert "the previous last.ckpt is intact" in line
    assert torch.load(disk / "last.ckpt", weights_only=True)["epoch"] == 0
    assert leftovers(disk) == []


def test_atomic_text_write_on_a_full_disk_keeps_the_old_file(mounts):
    disk = mounts.tmpfs("text", "256k")
    atomic_write_text(disk / "results.json", '{"status": "running"}\n')
    fill_disk(disk)
    with pytest.raises(OSError) as caught:
        atomic_write_text(disk / "results.json", "x" * 500_000)
    assert caught.value.errno == errno.ENOSPC
    assert (disk / "results.json").read_text() == '{"status": "running"}\n'
    assert leftovers(disk) == []


def test_non_essential_writes_warn_once_and_leave_no_half_file(mounts, caplog):
    disk = mounts.tmpfs("pics", "256k")
    fill_disk(disk, leave_bytes=8192)
    pictures = NonEssentialWrites("pictures")
    noise = Image.frombytes("L", (512, 512), torch.randint(0, 255, (512 * 512,)).byte().numpy())
    with caplog.at_level(logging.WARNING):
        for index in range(3):
            assert (
                pictures.attempt(
                    disk / f"{index}.png", lambda i=index: noise.save(disk / f"{i}.png")
                )
                is None
            )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"Writing pictures to {disk / '0.png'} failed: no space left" in warnings[0]
    assert "Training goes on" in warnings[0]
    assert not list(disk.glob("*.png"))  # no half-written PNG left behind
    assert pictures.attempt(None, lambda: 7) == 7


def test_a_log_file_on_a_full_disk_warns_once(mounts, capsys):
    disk = mounts.tmpfs("log", "64k")
    handler = logging.FileHandler(disk / "train.log")
    logger = logging.getLogger("tests.fs.full_log")
    logger.propagate = False  # only this handler: root may hold other tests' stale handlers
    logger.addHandler(handler)
    try:
        quiet_log_file_errors([handler])
        fill_disk(disk)
        for _ in range(50):
            logger.warning("x" * 200)
    finally:
        logger.removeHandler(handler)
        with contextlib.suppress(OSError):  # as logging.shutdown() does at exit
            handler.close()
    err = capsys.readouterr().err
    assert err.count("Warning: Writing the log file") == 1
    assert "no space left" in err and "Traceback" not in err and "Logging error" not in err
