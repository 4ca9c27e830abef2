"""What a built wheel of the project must hold, checked by tests/test_packaging.py and by
scripts/wheel_check.sh (CI) alike: every config of ``gan_lightning/conf`` (Hydra finds them
as package data, there is no checkout around an installed package), every module, the
console scripts of pyproject.toml and the package's one version."""

from __future__ import annotations

import ast
import configparser
import email.parser
import zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the TOML reader pip itself uses
    from pip._vendor import tomli as tomllib


def wheel_entry_points(names: set[str], archive: zipfile.ZipFile) -> dict[str, str]:
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # keep gan-train as written
    parser.read_string(archive.read(entry_points).decode())
    return {k: v.strip() for k, v in parser["console_scripts"].items()}


def pyproject(repo: Path) -> dict:
    return tomllib.loads((repo / "pyproject.toml").read_text())


def source_version(init: Path) -> str:
    """``__version__`` of a package's ``__init__.py``, read as setuptools reads it (the
    literal, without importing the package)."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise AssertionError(f"{init} defines no __version__")


def check_wheel(wheel: Path, repo: Path) -> list[str]:
    """Assert ``wheel`` is a complete package of the checkout ``repo``; lines that say what
    was checked."""
    package = repo / "gan_lightning"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        configs = {p.relative_to(repo).as_posix() for p in (package / "conf").rglob("*.yaml")}
        missing = sorted(configs - names)
        assert configs and not missing, f"{wheel.name} lacks configs: {missing[:5]}"
        modules = {
            p.relative_to(repo).as_posix()
            for p in package.rglob("*.py")
            if "__pycache__" not in p.parts
        }
        missing = sorted(modules - names)
        assert not missing, f"{wheel.name} lacks modules: {missing[:5]}"
        tops = {name.split("/")[0] for name in names}
        strays = sorted(t for t in tops if t != "gan_lightning" and not t.endswith(".dist-info"))
        assert not strays, f"{wheel.name} installs more than gan_lightning: {strays}"

        scripts = pyproject(repo)["project"]["scripts"]
        assert wheel_entry_points(names, archive) == scripts, "console scripts differ"

        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        version = email.parser.Parser().parsestr(archive.read(metadata).decode())["Version"]
    expected = source_version(package / "__init__.py")
    assert version == expected, f"the wheel says version {version}, the package {expected}"
    return [
        f"{wheel.name}: {len(configs)} configs, {len(modules)} modules, version {version}",
        "console scripts: " + ", ".join(sorted(scripts)),
    ]
