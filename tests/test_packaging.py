"""The installable package: the built wheel holds every config and the console scripts, one
version everywhere, ``python -m gan_lightning`` lists the commands, and nothing assumes a
checkout around the package (scripts/wheel_check.sh installs and runs the wheel in CI)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import gan_lightning
from gan_lightning import __main__ as package_main
from gan_lightning.commands import COMMANDS
from gan_lightning.runtime import cli, distributed, loggers
from tests.conftest import REPO
from tests.wheel_contents import check_wheel, pyproject, source_version

SCRIPTS = pyproject(REPO)["project"]["scripts"]


def clean_copy(repo: Path, dest: Path) -> Path:
    """The checkout's files that git would keep (tracked or untracked, not ignored): a build
    from it sees no stale build/ folder and writes nothing into the checkout."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    archive = dest.with_suffix(".tar")
    with tarfile.open(archive, "w") as tar:
        for name in files:
            if (repo / name).exists() or (repo / name).is_symlink():
                tar.add(repo / name, arcname=name, recursive=False)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="tar")
    return dest


@pytest.mark.slow
def test_the_wheel_holds_every_config_and_the_console_scripts(tmp_path):
    source = clean_copy(REPO, tmp_path / "src")
    assert (source / "conf").is_symlink()  # the checkout's conf/ is a link into the package
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", "dist"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("gan_lightning-*.whl")
    lines = check_wheel(wheel, REPO)
    assert "gan-train" in lines[-1] and "configs" in lines[0]


def test_one_version_everywhere(capsys):
    assert source_version(REPO / "gan_lightning" / "__init__.py") == gan_lightning.__version__
    from importlib import metadata

    assert metadata.version("gan_lightning") == gan_lightning.__version__  # pyproject: dynamic
    from gan_lightning import evaluate, generate, report, train
    from gan_lightning.metrics import train_classifier

    for module in (train, generate, evaluate, report, train_classifier):
        assert module.main(["--version"]) == 0
        assert capsys.readouterr().out.strip() == f"gan_lightning {gan_lightning.__version__}"


def test_python_m_gan_lightning_lists_the_console_scripts():
    assert set(COMMANDS) == set(SCRIPTS)  # a summary for every command
    out = subprocess.run(
        [sys.executable, "-m", "gan_lightning"], capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0] for line in out.stdout.splitlines() if line.startswith("  gan-")}
    assert listed == set(SCRIPTS)
    version = subprocess.run(
        [sys.executable, "-m", "gan_lightning", "--version"], capture_output=True, text=True
    )
    assert version.stdout.strip() == gan_lightning.version_line()


def test_console_scripts_answer_help_and_version_without_importing_torch():
    """Each console script is commands.<name>, which runs its module's main (same config)."""
    from importlib import import_module

    for name, target in SCRIPTS.items():
        module, function = target.split(":")
        assert module == "gan_lightning.commands" and function == name[4:].replace("-", "_")
        app = import_module(COMMANDS[name].module).main
        assert app.config_name == COMMANDS[name].config_name, name
    code = (
        "import sys; from gan_lightning import commands as c; "
        "assert c.train(['--help']) == 0 and c.report(['--version']) == 0; "
        "assert c.evaluate(['--help']) == 0 and c.generate(['-h']) == 0; "
        "print(sorted(m for m in ('torch', 'pytorch_lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "seed000_mlp_gan" in out.stdout and "gan-evaluate" in out.stdout


def test_python_m_gan_lightning_runs_a_command(capsys):
    assert package_main.main(["report", "--help"]) == 0
    assert "gan-report" in capsys.readouterr().out
    assert package_main.main(["nonsense"]) == 2
    assert "unknown command 'nonsense'" in capsys.readouterr().err


def test_an_installed_package_assumes_no_checkout(monkeypatch, tmp_path):
    """In site-packages there is no train.py, pyproject.toml or git work tree of the project
    next to the package: DDP ranks start the module, and no commit is claimed, even when the
    venv sits inside someone else's git repository."""
    assert cli.checkout_root() == REPO  # this test session runs from the checkout
    site = tmp_path / "project" / ".venv" / "site-packages"
    (site / "gan_lightning").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "project")], check=True)
    monkeypatch.setattr(cli, "PACKAGE_DIR", site / "gan_lightning")
    assert cli.checkout_root() is None
    assert distributed.entry_point() == [sys.executable, "-m", "gan_lightning.train"]
    assert loggers.git_state() == {}
    assert loggers.git_state(site) == {}  # inside a repository, but not its top
    meta = loggers.run_metadata()
    assert meta["gan_lightning_version"] == gan_lightning.__version__ and "git_commit" not in meta
