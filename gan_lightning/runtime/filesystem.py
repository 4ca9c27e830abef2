"""Faults of the machine as one clear line: checks of the paths a run reads and writes, and
the translation of ``OSError`` into a message naming the path, what was being done and the fix.

Config mistakes are caught by :mod:`gan_lightning.runtime.config_checks`; this module handles
what no config check can see: a folder that is a file, a read-only mount, a full disk, an
empty file where a checkpoint should be, a directory deleted while a run uses it.

* **Before anything runs**, every app checks the directories it will write
  (:func:`check_writable_dir` writes and removes a probe file: permission bits say nothing
  when running as root, and a read-only mount is only seen by writing) and the files and
  folders it will read (:func:`check_input_dir`, :func:`check_input_file`). A failure is a
  :class:`~gan_lightning.errors.FileSystemError` with exit code 2.
* **During training**, a write that fails stops the run with :data:`STORAGE_STOP_EXIT` and a
  line naming the write, the space it needs and the last good checkpoint
  (:func:`training_stopped`), except the writes that are not essential (pictures, GIFs,
  curves, the ``train.log`` file), which warn once (:class:`NonEssentialWrites`) and let
  training go on. docs/safety.md lists which writes are which.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from gan_lightning.errors import FileSystemError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The exit code of a training run stopped by a file-system fault (a failed essential write):
#: ``EX_IOERR`` of sysexits.h. Faults found before training starts exit with 2, like every
#: other error a user can fix.
STORAGE_STOP_EXIT = 74
PROBE_PREFIX = ".gan-lightning-write-probe-"

#: errno -> (what went wrong, how to fix it), for the faults a user can fix.
REASONS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free space on that disk or use another one"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota or use another disk"),
    errno.EFBIG: ("file too large for that file system", "use another disk"),
    errno.EROFS: ("read-only file system", "use a writable folder (or remount it read-write)"),
    errno.EACCES: ("permission denied", "use a folder you may write, or fix its permissions"),
    errno.EPERM: ("operation not permitted", "use a folder you may write"),
    errno.ENOTDIR: (
        "a part of the path is a file, not a directory",
        "remove or rename that file, or use another path",
    ),
    errno.EISDIR: ("it is a directory, not a file", "pass a file path"),
    errno.EEXIST: ("a file is in the way", "remove or rename it, or use another path"),
    errno.ENOENT: (
        "it does not exist (was it moved or deleted while in use?)",
        "restore it or use another path",
    ),
    errno.EIO: ("input/output error", "check the disk (dmesg) and use another one"),
    errno.ENAMETOOLONG: ("the name is too long", "use a shorter path"),
    errno.ESTALE: ("stale network file handle", "remount the network file system"),
}


#: The errnos only a write can meet.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def is_file_system_fault(err: BaseException) -> bool:
    """Whether ``err`` is an ``OSError`` of the kinds in :data:`REASONS` (not, e.g., a
    connection error, which is an ``OSError`` too)."""
    return isinstance(err, OSError) and err.errno in REASONS


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - the loop always returns


def existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (what a new path's disk is)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the disk ``path`` (or its nearest existing ancestor) is on."""
    try:
        return shutil.disk_usage(existing_ancestor(Path(path))).free
    except OSError:
        return None


def describe(err: OSError, doing: str, path: str | Path | None = None, fix: str = "") -> str:
    """One line: ``<doing> <path>: <reason>; <fix>.`` (``fix``: the project's own advice, e.g.
    which config key moves the path; the errno's generic fix otherwise)."""
    path = path if path is not None else (err.filename or "?")
    reason, generic = REASONS.get(err.errno or 0, (err.strerror or str(err), ""))
    if err.filename2:
        path = f"{path} -> {err.filename2}"
    line = f"{doing} {path} failed: {reason}"
    return f"{line}; {fix or generic}." if (fix or generic) else f"{line}."


def from_os_error(err: OSError, doing: str, path: Any = None, fix: str = "") -> FileSystemError:
    """``err`` as a :class:`FileSystemError` (exit code 2) with :func:`describe`'s line."""
    return FileSystemError(describe(err, doing, path, fix), path=path or err.filename)


# --------------------------------------------------------------------------- up-front checks
def _sentence(what: str) -> str:
    return what[:1].upper() + what[1:]


def _no_file_in_path(path: Path, what: str, fix: str, default_fix: str) -> None:
    """:class:`FileSystemError` when ``path`` or one of its parents is a file."""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            where = "" if parent == path else f" ({parent} is a file)"
            raise FileSystemError(
                f"{_sentence(what)} {path} is not a directory{where}; {fix or default_fix}.",
                path=parent,
            )


def _probe(directory: Path, create: bool) -> None:
    """Write, fsync and remove a probe file in ``directory`` (created first with ``create``,
    else its nearest existing ancestor is probed); ``OSError`` on any failure."""
    if create:
        directory.mkdir(parents=True, exist_ok=True)
    else:
        directory = existing_ancestor(directory)
    probe = directory / f"{PROBE_PREFIX}{os.getpid()}"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"0")
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        probe.unlink(missing_ok=True)


def check_writable_dir(path: str | Path, what: str, fix: str = "", create: bool = True) -> Path:
    """Make sure ``path`` is (or can become) a directory this process can write.

    ``what`` names it for the message (e.g. ``"the run directory"``). With ``create``, missing
    directories are created; without, the nearest existing ancestor is probed instead (a
    check before Hydra creates the run directory). Writing and removing a probe file is the
    only reliable test: root ignores permission bits, and a read-only mount or a full quota
    only shows when writing.
    """
    path = Path(path).expanduser()
    _no_file_in_path(path, what, fix, "remove or rename that file, or use another path")
    try:
        _probe(path, create)
    except OSError as err:
        raise from_os_error(err, f"Writing to {what}", path, fix) from err
    return path


def check_output_file(path: str | Path, what: str, fix: str = "") -> Path:
    """A file about to be (over)written: not a directory, and its folder writable."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise FileSystemError(
            f"{_sentence(what)} {path} is a directory; {fix or 'pass a file name'}.", path=path
        )
    folder = path.parent if str(path.parent) else Path(".")
    _no_file_in_path(folder, f"the folder of {what}", fix, "use another path")
    try:
        _probe(folder, create=True)
    except OSError as err:
        raise from_os_error(err, f"Writing {what}", path, fix) from err
    return path


def check_input_dir(path: str | Path, what: str, fix: str = "") -> Path:
    """A folder that will be read (and may be created, e.g. a data directory): if it exists,
    it must be a directory."""
    path = Path(path).expanduser()
    _no_file_in_path(path, what, fix, "point it at a folder")
    return path


def check_input_file(path: str | Path, what: str, fix: str = "") -> Path:
    """A file that will be read: it exists, is a file, is not empty and can be opened."""
    path = Path(path).expanduser()
    name = f"{_sentence(what)} {path}"
    if not path.exists():
        raise FileSystemError(f"{name} does not exist; {fix or 'check the path'}.", path)
    if path.is_dir():
        raise FileSystemError(f"{name} is a directory; {fix or 'pass a file'}.", path)
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as err:
        raise from_os_error(err, f"Reading {what}", path, fix) from err
    if size == 0:
        raise FileSystemError(
            f"{name} is empty (0 bytes; a copy or a save that did not finish?); "
            f"{fix or 'pass a complete file'}.",
            path,
        )
    return path


# --------------------------------------------------------------------------- writing
def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, renamed over
    it: a reader sees the old or the new file, and a failed write (a full disk) leaves the
    old file and no temporary behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_save(
    obj: Any, path: str | Path, what: str, fix: str = "", mode: int | None = None
) -> Path:
    """``torch.save(obj)`` to ``.<name>.tmp-<pid>`` next to ``path``, fsync, rename over it,
    fsync the folder (the rename survives a power cut). A process killed while saving leaves
    the previous file intact; a failed write (a full or read-only disk) removes the temporary
    file and raises a :class:`FileSystemError` naming ``what``, the space the file needs
    (its tensors' bytes) and the space left. ``mode``: the new file's permission bits."""
    import torch  # here, not at the top: the help screens import this module without torch

    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as handle:
                torch.save(obj, handle)
                handle.flush()
                os.fsync(handle.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, target)  # atomic on POSIX: readers see the old or the new file
        finally:
            tmp.unlink(missing_ok=True)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except (OSError, RuntimeError) as err:
        needed = state_nbytes(obj)
        cause = as_os_error(err, target.parent, needed)
        if cause is None:
            raise
        kept = f"the previous {target.name} is intact" if target.is_file() else "nothing was left"
        line = describe(cause, f"Writing {what}", target, fix).rstrip(".")
        raise FileSystemError(
            f"{line} ({space_hint(target.parent, needed)}; {kept}).", path=target
        ) from err
    return target


def as_os_error(err: BaseException, directory: Path, needed: int) -> OSError | None:
    """The file-system fault behind a failed ``torch.save``: the ``OSError`` itself or the one
    its zip writer was handling when it raised its own ``RuntimeError`` ("unexpected pos");
    for a bare ``RuntimeError`` of the writer ("file write failed"), ENOSPC when the disk has
    less room than the file needs (EIO otherwise); ``None`` for any other error."""
    fault = first_fault(err)
    if isinstance(fault, OSError):
        return fault
    if isinstance(err, RuntimeError) and "write" in str(err).lower():
        free = free_bytes(directory)
        full = free is not None and free < needed
        return OSError(errno.ENOSPC if full else errno.EIO, str(err).splitlines()[0])
    return None


# --------------------------------------------------------------------------- during training
def state_nbytes(state: Any) -> int:
    """Bytes of the tensors in a (nested) checkpoint dict: about what ``torch.save`` writes."""
    import torch

    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_nbytes(v) for v in state)
    return 0


def space_hint(path: str | Path, needed: int | None) -> str:
    """``needs about 12.3 MB, 1.0 MB free on <disk>`` for a write of ``needed`` bytes."""
    free = free_bytes(path)
    parts = []
    if needed:
        parts.append(f"needs about {human_bytes(needed)}")
    if free is not None:
        parts.append(f"{human_bytes(free)} free there")
    return ", ".join(parts)


def last_good_checkpoint(directory: str | Path | None) -> Path | None:
    """The newest complete ``*.ckpt`` in ``directory`` (temporaries are hidden dot files)."""
    if directory is None:
        return None
    try:
        found = [p for p in Path(directory).glob("*.ckpt") if p.is_file() and p.stat().st_size]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def first_fault(err: BaseException) -> BaseException | None:
    """The first file-system fault behind ``err``: a :class:`FileSystemError` or an ``OSError``
    of :data:`REASONS`, following causes and contexts (a fault while Lightning was cleaning up
    after an earlier one is reported as the earlier one)."""
    chain = []
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        if isinstance(err, FileSystemError):
            break  # what it was raised from is its own detail, already in its message
        err = err.__cause__ or err.__context__
    faults = [e for e in chain if isinstance(e, FileSystemError) or is_file_system_fault(e)]
    return faults[-1] if faults else None


def path_of(err: BaseException) -> str | None:
    """The file an ``OSError`` was about: its ``filename``, or for a write through an open
    file object (which carries none, e.g. a logger's CSV writer) the name of the innermost
    open file in the traceback."""
    if getattr(err, "filename", None):
        return str(err.filename)  # type: ignore[attr-defined]
    for frame, _ in reversed(list(traceback.walk_tb(err.__traceback__))):
        for value in frame.f_locals.values():
            name = getattr(value, "name", None)
            if isinstance(value, io.IOBase) and isinstance(name, str):
                return name
    return None


def training_stopped(fault: BaseException, checkpoint_dir: str | Path | None) -> FileSystemError:
    """The line a run stopped by ``fault`` during training ends with: which write failed, the
    last good checkpoint and how to continue; exit code :data:`STORAGE_STOP_EXIT`."""
    if isinstance(fault, FileSystemError):
        message = str(fault).rstrip(".")
    else:
        writing = getattr(fault, "errno", None) in WRITE_ERRNOS
        message = describe(  # type: ignore[arg-type]
            fault, "Writing" if writing else "Accessing", path_of(fault)
        ).rstrip(".")
    last = last_good_checkpoint(checkpoint_dir)
    resume = (
        f"The last good checkpoint is {last}: fix the disk, then continue with the same "
        f"command plus resume=auto (or ckpt_path={last})."
        if last is not None
        else f"There is no complete checkpoint in {checkpoint_dir}."
    )
    return FileSystemError(
        f"Training stopped: {message}. {resume}",
        path=getattr(fault, "path", None),
        exit_code=STORAGE_STOP_EXIT,
    )


class NonEssentialWrites:
    """Writes a run can lose without losing work (pictures, GIFs, curves): a failure is
    warned about once per kind, the partial file removed, and training goes on.

    ``attempt(path, write)`` runs ``write()`` and returns its result, or ``None`` on a
    file-system fault (or a picture file that cannot be read back: PIL raises ``OSError``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.warned = False

    def reset(self) -> None:
        """Warn again (a new run in the same process: the jobs of a multirun)."""
        self.warned = False

    def attempt(self, path: str | Path | None, write: Callable[[], T]) -> T | None:
        try:
            return write()
        except OSError as err:
            if path is not None and Path(path).is_file():
                Path(path).unlink(missing_ok=True)  # never leave half a PNG behind
            if not self.warned:
                self.warned = True
                doing = f"Writing {self.what}" if path is None else f"Writing {self.what} to"
                log.warning(
                    "%s Training goes on without them (they are not essential; see "
                    "docs/safety.md); this warning is shown once.",
                    describe(err, doing, path),
                )
            return None


#: The run's pictures (sample grids, interpolations, curves, ...) and animations.
PICTURES = NonEssentialWrites("pictures")


def quiet_log_file_errors(handlers: Iterable[logging.Handler] | None = None) -> None:
    """A ``train.log`` that cannot be written (full disk) costs one warning on stderr, not a
    ``--- Logging error ---`` traceback per log line; the console keeps every line.

    ``handleError`` is the documented hook for exactly this (``logging.Handler``)."""
    handlers = logging.getLogger().handlers if handlers is None else handlers
    for handler in handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handleError = _WarnOnce(handler)  # type: ignore[method-assign]


class _WarnOnce:
    def __init__(self, handler: logging.FileHandler) -> None:
        self.handler = handler
        self.warned = False

    def __call__(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if self.warned:
            return
        self.warned = True
        line = (
            describe(err, "Writing the log file", self.handler.baseFilename)
            if isinstance(err, OSError)
            else f"Writing the log file {self.handler.baseFilename} failed: {err}"
        )
        print(f"Warning: {line} The console output is complete.", file=sys.stderr)
