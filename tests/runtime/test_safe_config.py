"""Checkpoints cannot run code: crafted configs of several kinds are refused, by every reader."""

from __future__ import annotations

import sys

import pytest
import torch

from gan_lightning.errors import ConfigError
from gan_lightning.runtime.checkpoints import load_module, read_checkpoint
from gan_lightning.runtime.safe_config import check_trusted, instantiate_trusted

MARKER = "pwned.txt"


def crafted(tmp_path, model: dict, **extra) -> str:
    """A checkpoint that passes every structural check and carries ``model`` as its config."""
    path = tmp_path / "crafted.ckpt"
    config = {"model": model, **extra}
    torch.save(
        {"state_dict": {}, "gan_lightning": {"config": config, "format": 1, "version": "0.1.0"}},
        path,
    )
    return str(path)


def shell(tmp_path) -> str:
    return f"touch {tmp_path / MARKER}"


HOSTILE = {
    "os.system at the top": lambda t: {"_target_": "os.system", "_args_": [shell(t)]},
    "subprocess in a net": lambda t: {
        "_target_": "gan_lightning.modules.gan.GAN",
        "generator": {"_target_": "subprocess.Popen", "args": ["sh", "-c", shell(t)]},
    },
    "builtins.exec": lambda t: {
        "_target_": "builtins.exec",
        "_args_": [f"open({str(t / MARKER)!r}, 'w')"],
    },
    "a torch function": lambda t: {"_target_": "torch.load", "_args_": [str(t / MARKER)]},
    "a torch.nn function": lambda t: {"_target_": "torch.nn.functional.relu"},
    "a project function": lambda t: {
        "_target_": "gan_lightning.data.sources.mnist.pip_download",
        "_args_": ["evil==1", str(t)],
    },
    "a module on sys.path": lambda t: {"_target_": "planted_module.Anything"},
    "an unknown special key": lambda t: {
        "_target_": "gan_lightning.nets.priors.NormalPrior",
        "_call_": "os.system",
    },
    "an interpolation": lambda t: {
        "_target_": "gan_lightning.nets.priors.UniformPrior",
        "low": "${oc.env:HOME}",
    },
}


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A module on sys.path whose import alone would write the marker."""
    (tmp_path / "planted_module.py").write_text(
        f"open({str(tmp_path / MARKER)!r}, 'w').write('imported')\nclass Anything: pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("planted_module", None)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_crafted_checkpoints_are_refused_before_anything_runs(kind, tmp_path, planted):
    path = crafted(tmp_path, HOSTILE[kind](tmp_path))
    with pytest.raises(ConfigError) as err:
        load_module(path)
    assert not (tmp_path / MARKER).exists(), "the crafted config ran code"
    message = str(err.value)
    assert "crafted.ckpt" in message and ("not allowed" in message or "interpolation" in message)


def test_every_cli_refuses_them(tmp_path, planted, capsys):
    from gan_lightning.evaluate import main as evaluate
    from gan_lightning.generate import main as generate

    path = crafted(tmp_path, HOSTILE["os.system at the top"](tmp_path))
    assert generate([f"ckpt={path}", f"out={tmp_path / 'x.png'}"]) == 2
    assert "os.system" in capsys.readouterr().err
    # gan-evaluate also rebuilds the data and metrics nodes of the saved config.
    evil_metrics = {"_target_": "os.system", "_args_": [shell(tmp_path)]}
    path = crafted(
        tmp_path, {"_target_": "gan_lightning.nets.priors.NormalPrior"}, metrics=evil_metrics
    )
    assert evaluate([f"ckpt={path}"]) == 2
    assert "metrics._target_='os.system'" in capsys.readouterr().err
    assert not (tmp_path / MARKER).exists()


def test_the_projects_own_configs_and_torch_classes_pass():
    check_trusted(
        {
            "_target_": "gan_lightning.modules.gan.GAN",
            "generator": {"_target_": "gan_lightning.nets.mlp.MLPGenerator"},
            "optimizer_g": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
            "extra": [{"_target_": "torch.nn.LeakyReLU"}],
        },
        "model",
    )
    prior = instantiate_trusted({"_target_": "gan_lightning.nets.priors.UniformPrior"}, "p")
    assert prior.low == -1.0


def test_real_checkpoints_still_load(tmp_path):
    """A checkpoint written by a real (tiny) training run passes the allowlist."""
    import pytorch_lightning as pl

    from tests.helpers import tensor_loader, tiny_gan

    model = tiny_gan()
    model.run_config = {
        "model": {
            "_target_": "gan_lightning.modules.gan.GAN",
            "generator": {
                "_target_": "gan_lightning.nets.mlp.MLPGenerator",
                "latent_dim": 4,
                "image_shape": [1, 4, 4],
                "hidden_sizes": [8],
            },
            "discriminator": {
                "_target_": "gan_lightning.nets.mlp.MLPDiscriminator",
                "image_shape": [1, 4, 4],
                "hidden_sizes": [8],
            },
            "optimizer_g": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
            "optimizer_d": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
        }
    }
    trainer = pl.Trainer(
        max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, tensor_loader())
    trainer.save_checkpoint(tmp_path / "real.ckpt")
    module, _ = load_module(tmp_path / "real.ckpt")
    torch.testing.assert_close(
        module.generator.out.weight, model.generator.out.weight.detach().cpu()
    )
    assert read_checkpoint(tmp_path / "real.ckpt")["gan_lightning"]["format"] == 1


def test_other_formats_name_the_version_that_wrote_them(tmp_path):
    path = tmp_path / "future.ckpt"
    model = {"_target_": "gan_lightning.nets.priors.NormalPrior"}
    torch.save(
        {"state_dict": {}, "gan_lightning": {"config": {"model": model}, "format": 7,
                                             "version": "9.0.0"}},
        path,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"gan-lightning 9\.0\.0 \(checkpoint format 7\)"):
        read_checkpoint(path)


def test_truncated_and_resumed_with_another_model_are_clear_errors(tmp_path):
    from omegaconf import OmegaConf

    from gan_lightning.train import prepare_resume

    model = {"_target_": "gan_lightning.modules.gan.GAN"}
    good = tmp_path / "good.ckpt"
    torch.save(
        {"state_dict": {"w": torch.ones(1000)},
         "gan_lightning": {"config": {"model": model}, "format": 1, "batches_seen": 7}},
        good,
    )  # fmt: skip
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ConfigError, match="not a gan-lightning checkpoint .*unreadable"):
        read_checkpoint(truncated)
    cfg = OmegaConf.create({"model": {"_target_": "gan_lightning.modules.vae.VAE"}, "logger": None})
    with pytest.raises(ConfigError, match="holds a gan_lightning.modules.gan.GAN but model"):
        prepare_resume(cfg, str(good))
    cfg.model._target_ = "gan_lightning.modules.gan.GAN"
    prepare_resume(cfg, str(good))  # the same class: fine
