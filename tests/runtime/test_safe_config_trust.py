"""``trust=[my_project]``: checkpoints of your own classes load when *you* say so, and trusting a
package never opens the door to functions, re-exports, private names or planted modules."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.checkpoints import load_module, read_checkpoint
from gan_lightning.runtime.safe_config import check_trust, check_trusted, trusted_class
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "my_gan"
MARKER = "pwned.txt"


@pytest.fixture(autouse=True)
def example_on_path(monkeypatch):
    """examples/my_gan importable as a user's package would be (no pip install needed)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))


def my_gan_config() -> dict:
    """The resolved model config of a run with my_gan's nets (as train.py saves it)."""
    return {
        "_target_": "gan_lightning.modules.gan.GAN",
        "latent_dim": 8,
        "pixel_range": [-1.0, 1.0],
        "generator": {
            "_target_": "my_gan.nets.ResGenerator",
            "latent_dim": 8,
            "image_shape": [1, 8, 8],
            "width": 4,
        },
        "discriminator": {
            "_target_": "my_gan.nets.PlainDiscriminator",
            "image_shape": [1, 8, 8],
            "width": 4,
        },
        "optimizer_g": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
        "optimizer_d": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
    }


def save_checkpoint(tmp_path: Path, model: dict, **config) -> Path:
    """A checkpoint as a run writes it: real weights of ``model`` and its config inside."""
    from hydra.utils import instantiate

    module = instantiate(model)
    path = tmp_path / "my_gan.ckpt"
    torch.save(
        {
            "state_dict": module.state_dict(),
            "gan_lightning": {
                "config": {"model": model, **config},
                "format": 1,
                "version": "0.1.0",
                "batches_seen": 7,
            },
        },
        path,
    )
    return path


def test_an_untrusted_user_class_is_refused_with_the_trust_setting_named(tmp_path):
    path = save_checkpoint(tmp_path, my_gan_config())
    with pytest.raises(ConfigError, match=r"my_gan\.nets\.ResGenerator.*trust=\[my_gan\]"):
        load_module(path)


def test_trusted_it_loads_and_generates(tmp_path):
    path = save_checkpoint(tmp_path, my_gan_config())
    module, _ = load_module(path, trust=["my_gan"])
    assert type(module.generator).__module__ == "my_gan.nets"
    assert module.batches_seen == 7
    images = module.sample(3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 8, 8) and images.abs().max() <= 1
    # A module prefix works too; a neighbour of the package does not.
    load_module(path, trust=["my_gan.nets"])
    with pytest.raises(ConfigError, match="trust=\\[my_gan\\]"):
        load_module(path, trust=["my_ga", "my_gan.data"])


def test_the_checkpoints_own_trust_key_is_never_used(tmp_path):
    """A run trained with trust=[my_gan] saves that key in its config; a reader ignores it."""
    path = save_checkpoint(tmp_path, my_gan_config(), trust=["my_gan"])
    with pytest.raises(ConfigError, match="trust=\\[my_gan\\]"):
        read_checkpoint(path)


def test_model_config_rebuilds_from_the_users_file_and_reads_only_weights(tmp_path):
    import yaml

    path = save_checkpoint(tmp_path, my_gan_config())
    own = tmp_path / "config.yaml"
    own.write_text(yaml.safe_dump({"model": my_gan_config(), "data": {"image_shape": [1, 8, 8]}}))
    module, config = load_module(path, model_config=own)  # no trust needed: your own file
    assert config["data"]["image_shape"] == [1, 8, 8]
    saved = torch.load(path, weights_only=True)["state_dict"]
    for key, value in module.state_dict().items():
        assert torch.equal(value, saved[key])
    # A file that builds another model is a clear error, not silently random weights.
    other = my_gan_config()
    other["generator"]["width"] = 6
    own.write_text(yaml.safe_dump({"model": other}))
    with pytest.raises(ConfigError, match="do not fit the model model_config="):
        load_module(path, model_config=own)


# --------------------------------------------------------------------------- attacks
PACKAGE = """
import os
import subprocess
from torch import load, nn
from torch.nn import Module


def run(command):
    os.system(command)


class NotAModule:
    def __init__(self, command="true"):
        os.system(command)


class Net(nn.Module):
    def __init__(self, width=2):
        super().__init__()
        self.layer = nn.Linear(width, width)
"""


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """``trusted_pkg`` (the user's own: a function, a non-module class, re-exports of os /
    torch.load / nn.Module, a __main__ that runs code on import, one nn.Module) and, planted
    on sys.path, ``trusted_pkg_evil`` and ``planted_module``, which run code on import."""
    root = tmp_path / "site"
    marker = tmp_path / MARKER
    planted = f"open({str(marker)!r}, 'w').write('ran')\n"
    (root / "trusted_pkg").mkdir(parents=True)
    (root / "trusted_pkg" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    (root / "trusted_pkg" / "__main__.py").write_text(planted)
    (root / "trusted_pkg_evil").mkdir()
    (root / "trusted_pkg_evil" / "__init__.py").write_text(
        planted + "from torch import nn\nclass Net(nn.Module):\n    pass\n"
    )
    (root / "planted_module.py").write_text(planted + "class Anything:\n    pass\n")
    monkeypatch.syspath_prepend(str(root))
    yield marker
    for name in [m for m in sys.modules if m.split(".")[0] in ("trusted_pkg", "trusted_pkg_evil")]:
        del sys.modules[name]


REFUSED = {
    "a function of the package": "trusted_pkg.run",
    "a class that is not a module": "trusted_pkg.NotAModule",
    "os through the package": "trusted_pkg.os.system",
    "subprocess through the package": "trusted_pkg.subprocess.Popen",
    "torch.load re-exported": "trusted_pkg.load",
    "nn.Module re-exported": "trusted_pkg.Module",
    "the package's builtins": "trusted_pkg.__builtins__",
    "exec through builtins": "trusted_pkg.__builtins__.exec",
    "the package's __main__": "trusted_pkg.__main__.Anything",
    "a neighbour package": "trusted_pkg_evil.Net",
    "a module planted on sys.path": "planted_module.Anything",
    "os.system": "os.system",
    "builtins.exec": "builtins.exec",
    "torch.load": "torch.load",
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_trusting_a_package_never_lets_these_through(kind, packages):
    target = REFUSED[kind]
    node = {"_target_": target, "_args_": [f"touch {packages}"]}
    with pytest.raises(ConfigError, match="not allowed in a saved config"):
        check_trusted(node, "model", ["trusted_pkg"])
    # Nested under a trusted class, as an argument, it is refused just the same.
    nested = {"_target_": "trusted_pkg.Net", "width": node}
    with pytest.raises(ConfigError, match="not allowed in a saved config"):
        check_trusted(nested, "model", ["trusted_pkg"])
    assert not packages.exists(), f"{target} ran code"
    assert "trusted_pkg_evil" not in sys.modules and "planted_module" not in sys.modules


def test_a_trusted_nn_module_class_passes(packages):
    check_trusted({"_target_": "trusted_pkg.Net", "width": 3}, "model", ["trusted_pkg"])
    cls, why = trusted_class("trusted_pkg.Net", ("trusted_pkg",))
    assert cls is not None and cls.__name__ == "Net" and why == ""
    assert not packages.exists()


@pytest.mark.parametrize("bad", ["my-gan", "_private", "my_gan.__init__", "a..b", "", "os/path"])
def test_trust_takes_module_prefixes_only(bad):
    with pytest.raises(ConfigError, match="is not a module prefix"):
        check_trust([bad])
    assert check_trust(None) == () and check_trust("my_gan") == ("my_gan",)


@pytest.mark.parametrize("prefix", ["os", "builtins", "torch", "subprocess", "gan_lightning"])
def test_even_trusting_their_packages_never_lets_functions_through(prefix, tmp_path):
    """A careless ``trust=[os]`` still lets no function, and no class that is not a net,
    DataModule, callback or optimizer, be called from a checkpoint."""
    for target in ("os.system", "builtins.exec", "builtins.type", "torch.load", "torch.hub.load",
                   "subprocess.Popen", "gan_lightning.data.sources.mnist.pip_download"):  # fmt: skip
        node = {"_target_": target, "_args_": [f"touch {tmp_path / MARKER}"]}
        with pytest.raises(ConfigError, match="not allowed in a saved config"):
            check_trusted(node, "model", [prefix])
    assert not (tmp_path / MARKER).exists()
