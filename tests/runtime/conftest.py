"""Real file-system faults for tests: a small tmpfs that fills up and read-only bind mounts.

Tests run as root, where ``chmod`` does not stop a write; only a real mount does. The machine
is probed once per session; without the right to mount (not root, no CAP_SYS_ADMIN in a
container) the tests that need it are skipped with the reason, and every mount is unmounted
in teardown, even when a test fails.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def can_mount() -> None:
    """Skip (with the reason) where this machine cannot mount a tmpfs."""
    probe = Path(tempfile.mkdtemp(prefix="gan-mount-probe-"))
    try:
        out = _run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
    except FileNotFoundError:
        pytest.skip("cannot mount file systems here: no mount command")
    try:
        if out.returncode != 0:
            pytest.skip(
                "cannot mount file systems here (needs root with CAP_SYS_ADMIN): "
                + (out.stderr.strip() or f"mount exited with {out.returncode}")
            )
        _run("umount", str(probe))
    finally:
        probe.rmdir()


class Mounts:
    """Mounts made by one test, all undone by :meth:`undo_all` (the fixture's teardown)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mounted: list[Path] = []

    def tmpfs(self, name: str, size: str) -> Path:
        """An empty tmpfs of ``size`` (e.g. ``"2m"``) at ``root/name``."""
        point = self.root / name
        point.mkdir(parents=True)
        self._mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point))
        self.mounted.append(point)
        return point

    def read_only(self, source: Path, name: str) -> Path:
        """``source`` (a folder) seen read-only at ``root/name``: a bind mount remounted ro."""
        point = self.root / name
        point.mkdir(parents=True)
        self._mount("--bind", str(source), str(point))
        self.mounted.append(point)
        self._mount("-o", "remount,ro,bind", str(point))
        return point

    def _mount(self, *args: str) -> None:
        out = _run("mount", *args)
        assert out.returncode == 0, f"mount {' '.join(args)}: {out.stderr}"

    def undo_all(self) -> None:
        for point in reversed(self.mounted):
            if _run("umount", str(point)).returncode != 0:
                _run("umount", "-l", str(point))  # busy (a child still holds it): detach
        self.mounted.clear()


@pytest.fixture
def mounts(can_mount, tmp_path) -> Mounts:
    made = Mounts(tmp_path / "mnt")
    try:
        yield made
    finally:
        made.undo_all()
