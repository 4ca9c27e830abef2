"""``hydra/launcher=slurm`` on a real (local) Slurm cluster: what a user's sweep, DDP job,
multi-node job and preempted job leave behind.

Every test submits through ``python train.py -m hydra/launcher=slurm ...`` exactly as a user
would, with tiny nets on real MNIST, and reads the results from disk: job dirs, submitit's
logs and result pickles, and what :mod:`tests.slurm.probe` wrote inside the jobs.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.slurm

#: The launcher process waits for its jobs; no test job should come near this.
LAUNCH_TIMEOUT_S = 300

TINY = [
    "trainer.max_steps=4",
    "trainer.max_epochs=1",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
    "metrics=none",
    "logger=csv",
    "model.generator.hidden_sizes=[16]",
    "model.discriminator.hidden_sizes=[16]",
    "data.batch_size=32",
    "num_threads=1",
    "hydra/launcher=slurm",
    "hydra.launcher.timeout_min=10",
]


def launch(args: list[str], sweep_dir: Path) -> list[str]:
    """The command line of a multirun submitted to Slurm into ``sweep_dir``."""
    return [sys.executable, "train.py", "-m", *TINY, f"hydra.sweep.dir={sweep_dir}", *args]


def run(args: list[str], sweep_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        out = subprocess.run(
            launch(args, sweep_dir),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=LAUNCH_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"the sweep took over {LAUNCH_TIMEOUT_S}s; the jobs' logs:{job_logs(sweep_dir)}"
        )
    assert out.returncode == 0, job_logs(sweep_dir) + out.stdout[-3000:] + out.stderr[-3000:]
    return out


def task_logs(sweep_dir: Path) -> dict[str, str]:
    """submitit's log of every task of every job (``<array>_<job>_<task>_log.out``) by name."""
    return {p.name: p.read_text() for p in sorted((sweep_dir / ".submitit").glob("*/*_log.out"))}


def job_logs(sweep_dir: Path) -> str:
    return "".join(f"\n----- {name}\n{text[-4000:]}" for name, text in task_logs(sweep_dir).items())


def ranks(run_dir: Path) -> list[dict]:
    files = sorted((run_dir / "ranks").glob("rank*.pt"))
    return [torch.load(f, weights_only=True) for f in files]


def assert_same_weights(states: list[dict[str, torch.Tensor]]) -> None:
    first = states[0]
    for other in states[1:]:
        assert other.keys() == first.keys()
        for key in first:
            assert torch.equal(first[key], other[key]), key


def checkpoint(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


def last_logged(metrics_csv: Path, key: str) -> float:
    """The last value of ``key`` in a CSVLogger metrics.csv."""
    header, *rows = [line.split(",") for line in metrics_csv.read_text().splitlines()]
    column = header.index(key)
    return float([row[column] for row in rows if row[column]][-1])


def test_sweep_of_two_jobs(slurm_env, tmp_path):
    """Two lrs as one Slurm job array: one job dir each, metrics returned to the launcher."""
    sweep = tmp_path / "sweep"
    run(["optimized_metric=train/d_loss_epoch", "model.optimizer_g.lr=1e-4,2e-4"], sweep, slurm_env)

    from submitit.core.utils import pickle_load

    # submitit's folder is inside the sweep dir, one folder per array task: <array id>_<job>.
    folders = sorted(p.name for p in (sweep / ".submitit").iterdir() if p.is_dir())
    array_ids = {name.split("_")[0] for name in folders if "_" in name}
    assert len(array_ids) == 1, folders
    (array_id,) = array_ids
    for job, lr in enumerate(["0.0001", "0.0002"]):
        run_dir = sweep / str(job)
        assert f"model.optimizer_g.lr={lr}" in (run_dir / ".hydra" / "overrides.yaml").read_text()
        assert (
            checkpoint(run_dir / "checkpoints" / "last.ckpt")["gan_lightning"]["batches_seen"] == 4
        )
        status, returned = pickle_load(
            sweep / ".submitit" / f"{array_id}_{job}" / f"{array_id}_{job}_0_result.pkl"
        )
        assert status == "success"
        # The value train.py returned inside the Slurm job is the one its logger wrote.
        logged = last_logged(run_dir / "csv" / "version_0" / "metrics.csv", "train/d_loss_epoch")
        assert math.isclose(returned.return_value, logged, rel_tol=1e-6)
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == [
        "0",
        "1",
        "multirun.yaml",
        "summary.csv",  # the sweep report, written when the Slurm multirun ends
        "summary.md",
    ]
    with open(sweep / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["status"], r["model.optimizer_g.lr"], r["steps"]) for r in rows] == [
        ("finished", "0.0001", "4"),
        ("finished", "0.0002", "4"),
    ], rows


def assert_ddp_job(run_dir: Path, logs: dict[str, str], nodes: set[str]) -> None:
    """Two ranks, started by srun (not by Lightning), trained in sync; rank 0 wrote the files."""
    probes = ranks(run_dir)
    assert [p["global_rank"] for p in probes] == [0, 1]
    for probe in probes:
        assert probe["world_size"] == 2
        assert probe["cluster_environment"] == "SLURMEnvironment"
        assert probe["slurm_procid"] == str(probe["global_rank"])  # Slurm's rank is Lightning's
        assert probe["batches_seen"] == 4 and probe["global_step"] == 8
    assert len({p["pid"] for p in probes}) == 2
    assert {p["slurm_node"] for p in probes} == nodes
    last = checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert_same_weights([p["state_dict"] for p in probes] + [last["state_dict"]])
    assert last["gan_lightning"]["batches_seen"] == 4
    # One task log per rank, and what is written once was written once.
    assert len(logs) == 2, list(logs)
    text = "".join(logs.values())
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in text and "GLOBAL_RANK: 1, MEMBER: 2/2" in text
    assert text.count("Trained on 4 real batches") == 1
    assert text.count("samples/epoch_000_step_0000004.png") == 1
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "epoch_000.ckpt",
        "last.ckpt",
    ]
    assert [p.name for p in (run_dir / "csv").iterdir()] == ["version_0"]
    assert [p.name for p in (run_dir / "samples").glob("*.png")] == ["epoch_000_step_0000004.png"]


PROBE_RANKS = [
    "+callbacks.rank_probe._target_=tests.slurm.probe.RankProbe",
    "+callbacks.rank_probe.out_dir=${paths.output_dir}/ranks",
]


def test_ddp_two_tasks_on_one_node(slurm_env, tmp_path):
    """trainer=ddp (devices=2): Slurm starts 2 tasks on one node, Lightning does not re-launch."""
    sweep = tmp_path / "sweep"
    run(
        ["trainer=ddp", "hydra.launcher.setup=['echo slurm-setup-ran']", *PROBE_RANKS],
        sweep,
        slurm_env,
    )
    logs = task_logs(sweep)
    assert "slurm-setup-ran" in next(iter(logs.values()))  # the batch script's own output
    assert sorted(name.rsplit("_", 2)[-2] for name in logs) == ["0", "1"]  # task ids
    probes_nodes = {p["slurm_node"] for p in ranks(sweep / "0")}
    assert len(probes_nodes) == 1
    assert_ddp_job(sweep / "0", logs, probes_nodes)


def test_ddp_over_two_nodes(slurm_env, tmp_path):
    """trainer.num_nodes=2: one task on each of the two slurmd "nodes" (n1, n2 on 127.0.0.1)."""
    sweep = tmp_path / "sweep"
    run(
        [
            "trainer=ddp",
            "trainer.devices=1",
            "trainer.num_nodes=2",
            *PROBE_RANKS,
        ],
        sweep,
        slurm_env,
    )
    run_dir = sweep / "0"
    assert_ddp_job(run_dir, task_logs(sweep), {"n1", "n2"})
    assert sorted(p["node_rank"] for p in ranks(run_dir)) == [0, 1]


MAX_STEPS = 30
SIGNAL_AT = 5


def test_preempted_job_is_requeued_and_resumes(slurm_env, tmp_path):
    """SIGUSR1 mid-run (what Slurm sends signal_delay_s before the time limit): Lightning saves
    hpc_ckpt_1.ckpt and requeues the job; the requeued run continues from it, same job dir."""
    sweep = tmp_path / "sweep"
    probe = tmp_path / "probe"
    args = [
        f"trainer.max_steps={MAX_STEPS}",
        "+callbacks.preempt._target_=tests.slurm.probe.PreemptionProbe",
        f"+callbacks.preempt.out_dir={probe}",
        f"+callbacks.preempt.signal_at={SIGNAL_AT}",
        "+callbacks.preempt.seconds_per_batch=0.2",
    ]
    launcher = subprocess.Popen(
        launch(args, sweep),
        cwd=REPO,
        env=slurm_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT_S
        while not (probe / "ready").is_file():
            assert launcher.poll() is None, "job ended before the signal:" + job_logs(sweep)
            assert time.monotonic() < deadline, "job never reached batch 5:" + job_logs(sweep)
            time.sleep(0.2)
        job_id = (probe / "ready").read_text().strip()
        assert job_id.isdigit(), job_id
        subprocess.run(["scancel", "--signal=USR1", job_id], env=slurm_env, check=True, timeout=30)
        output, _ = launcher.communicate(timeout=LAUNCH_TIMEOUT_S)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 0, output[-3000:] + job_logs(sweep)

    run_dir = sweep / "0"
    logs = task_logs(sweep)
    assert len(logs) == 1, list(logs)  # one job, one task; both runs append to its log
    text = "".join(logs.values())
    hpc = run_dir / "hpc_ckpt_1.ckpt"
    assert hpc.is_file(), sorted(p.name for p in run_dir.iterdir())
    assert "Handling auto-requeue signal" in text
    assert "Requeued SLURM job" in text
    assert f"Restored all states from the checkpoint at {hpc}" in text, text[-4000:]

    lines = [json.loads(line) for line in (probe / "batches.jsonl").read_text().splitlines()]
    starts = [line for line in lines if line["event"] == "start"]
    assert [s["restart"] for s in starts] == [0, 1], starts
    saved = checkpoint(hpc)["gan_lightning"]["batches_seen"]
    assert SIGNAL_AT <= saved < MAX_STEPS
    # The requeued run starts where the checkpoint left off, not at 0, and stops at the budget.
    assert starts[1]["batches_seen"] == saved
    requeued = [line for line in lines if line["event"] == "batch" and line["restart"] == 1]
    assert requeued[0]["batches_seen"] == saved + 1
    assert requeued[-1]["batches_seen"] == MAX_STEPS
    assert len(requeued) == MAX_STEPS - saved
    assert f"Trained on {MAX_STEPS} real batches" in text
    assert (
        checkpoint(run_dir / "checkpoints" / "last.ckpt")["gan_lightning"]["batches_seen"]
        == MAX_STEPS
    )
    assert not list((run_dir / "checkpoints").glob("last-v*.ckpt"))  # one last.ckpt, updated
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == [
        "0",
        "multirun.yaml",
        "summary.csv",
        "summary.md",
    ]
    with open(sweep / "summary.csv") as handle:
        [row] = list(csv.DictReader(handle))
    assert (row["status"], row["steps"]) == ("finished", str(MAX_STEPS))
