"""DDP inside a multirun: ranks > 0 re-run only their job, in its run dir; nothing is left over
for the next job. The integration tests run a 2-job sweep where each job trains with 2-process
DDP (gloo on CPU), with Hydra's basic launcher and with joblib."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import open_dict

from gan_lightning.runtime.cli import forget_hydra_run
from gan_lightning.runtime.distributed import LAUNCHER_ENV, ddp_job, job_command
from gan_lightning.train import CONFIG_DIR
from tests.helpers import one_epoch_of
from tests.metrics.helpers import metrics_overrides, random_classifier_file
from tests.test_train import run_train

WEIRD_DIR = "/tmp/sweep dir/a=b,c'd/0"


@pytest.fixture
def multirun_job():
    """HydraConfig as a multirun job of ``-m seed=1,2 hydra/launcher=joblib`` sees it."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "config",
            ["seed=2", "model.generator.hidden_sizes=[16]", "hydra/launcher=joblib"],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.runtime.output_dir = WEIRD_DIR
        cfg.hydra.runtime.cwd = "/somewhere"
        cfg.hydra.overrides.task = ["seed=2", "model.generator.hidden_sizes=[16]"]
        cfg.hydra.overrides.hydra = [
            "hydra/launcher=joblib",
            "hydra.mode=MULTIRUN",
            "hydra.sweep.dir=/tmp/sweep",
        ]
    HydraConfig.instance().set_config(cfg)
    yield cfg
    forget_hydra_run()


def test_job_command_reruns_only_this_job_in_its_dir(multirun_job):
    command, cwd = job_command(1)
    assert cwd == "/somewhere"
    assert command[1].endswith("train.py") and "-m" not in command and "--multirun" not in command
    args = command[2:]
    assert "--config-name=config" in args
    assert ["seed=2", "model.generator.hidden_sizes=[16]"] == [a for a in args if "=" in a][3:5]
    assert "hydra/launcher=joblib" in args and "hydra.sweep.dir=/tmp/sweep" in args
    assert "hydra.mode=MULTIRUN" not in args and args[-4] == "hydra.mode=RUN"
    assert args[-2:] == ["hydra.output_subdir=null", "hydra.job.name=train_ddp_process_1"]
    # The job dir survives Hydra's override parser unchanged (spaces, '=', ',', quotes).
    run_dir = OverridesParser.create().parse_override(args[-3])
    assert run_dir.key_or_group == "hydra.run.dir" and run_dir.value() == WEIRD_DIR


def test_ddp_job_leaves_no_process_group_or_launcher_env(tmp_path, monkeypatch):
    """What a DDP job leaves in the process (Lightning destroys the group only at exit)."""
    for name in LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")  # set by the user: kept
    trainer = SimpleNamespace(strategy=SimpleNamespace(launcher=None))
    threads = torch.get_num_threads()
    with ddp_job(trainer):
        dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="1234", LOCAL_RANK="0")
        os.environ.update(WORLD_SIZE="2", NODE_RANK="0")
        torch.set_num_threads(1)
    assert not dist.is_initialized()
    assert os.environ["MASTER_ADDR"] == "10.0.0.1"
    assert not any(n in os.environ for n in LAUNCHER_ENV if n != "MASTER_ADDR")
    assert torch.get_num_threads() == threads


def test_ddp_job_stops_the_ranks_of_a_failed_job():
    """After a failure, the other ranks would wait in a collective until the group times out."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    trainer = SimpleNamespace(strategy=SimpleNamespace(launcher=SimpleNamespace(procs=[child])))
    with pytest.raises(RuntimeError), ddp_job(trainer):
        raise RuntimeError("rank 0 failed")
    assert child.poll() is not None


# ---------------------------------------------------------------------------- integration
def tiny_ddp_args(mnist_dir: Path, classifier: Path) -> list[str]:
    """Two ranks on CPU (gloo), 4 real batches each, one validation with FID at the end."""
    return [
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        *one_epoch_of(4),
        "num_threads=1",
        "logger=csv",
        f"paths.data_dir={mnist_dir}",
        *metrics_overrides(classifier),
    ]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def ddp_reference(mnist_dir, tmp_path_factory) -> dict:
    """Job 1 (seed=2) as a single DDP run: Lightning's own relaunch, known to be right."""
    tmp = tmp_path_factory.mktemp("ddp_reference")
    classifier = random_classifier_file(tmp / "classifier.pt")
    out = run_train([*tiny_ddp_args(mnist_dir, classifier), "seed=2", f"hydra.run.dir={tmp}/run"])
    assert out.returncode == 0, out.stderr[-3000:]
    return {"classifier": classifier, "weights": weights(tmp / "run")}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_two_job_sweep_of_two_process_ddp_jobs(launcher, mnist_dir, ddp_reference, tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "seed=1,2",
        f"hydra/launcher={launcher}",
        *tiny_ddp_args(mnist_dir, ddp_reference["classifier"]),
        f"hydra.sweep.dir={sweep}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    if launcher == "joblib":
        args.append("hydra.launcher.n_jobs=2")
    out = run_train(args)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    # The sweep ran once: rank 1 never started it again.
    assert len(re.findall(r"(?i)launching 2 jobs", text)) == 1, text[-3000:]
    assert text.count("GLOBAL_RANK: 1, MEMBER: 2/2") == 2  # each job had its second rank
    # Both ranks of each job used the job's dir; nothing went to a new timestamped run dir.
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert not (tmp_path / "logs").exists()
    for job in ("0", "1"):
        rank1_log = (sweep / job / "train_ddp_process_1.log").read_text()
        assert "MNIST source" in rank1_log
        assert (sweep / job / ".hydra" / "config.yaml").is_file()
    # Rank 1 of job 1 trained job 1 (seed=2): the weights equal a single run of that job.
    job1 = weights(sweep / "1")
    assert job1.keys() == ddp_reference["weights"].keys()
    for name, tensor in job1.items():
        assert torch.equal(tensor, ddp_reference["weights"][name]), name
    job0 = weights(sweep / "0")
    assert any(not torch.equal(job0[n], job1[n]) for n in job1)  # seed=1 differs
    # The sweep report has both jobs with their FID (scored by both ranks together).
    assert "| 0 | 1 |" in (sweep / "summary.md").read_text()
