"""``make bench`` / ``python -m benchmarks.bench [--quick] [--threads N] [--out DIR]``.

One process measures, interleaved and repeated, for every case of :mod:`benchmarks.cases`:

* ``project``: ``gan_lightning.train.run`` with the default callbacks, metrics and W&B logger
  (offline); ``project_bare``: the same Trainer without callbacks/metrics/logger/progress bar;
* ``plain``: the plain PyTorch loop on the same nets and tensors; ``plain_tv0`` /
  ``plain_tv2``: the same loop fed by torchvision's MNIST + DataLoader, 0 / 2 workers;
* ``plain_bf16`` / ``project_bf16``: ``torch.autocast("cpu", bfloat16)`` and
  ``trainer.precision=bf16-mixed``;

then the fast-path variants of the plain loop, FLOPs per step against the measured peaks,
the time from ``python train.py`` to its first optimizer step, and one default run
(per-epoch throughput, share of periodic evaluation). It writes the generated section of
``BENCHMARKS.md`` and ``BENCHMARKS.json`` (``--quick``: under ``logs/bench/`` unless ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from benchmarks import report
from benchmarks.cases import (
    CASES,
    GPU_CASES,
    REPO,
    compose_config,
    data_dir,
    load_case_data,
    synthetic_case_data,
)
from benchmarks.plain import Options, Timing, time_plain

log = logging.getLogger("benchmarks")

#: Plain-loop variants measured against the default plain loop (name -> options, cases). The
#: default plain loop is the module's algorithm with the config's optimizer (fused Adam).
FAST_PATHS: dict[str, tuple[Options, tuple[str, ...], str]] = {
    "zero_grad(set_to_none=False)": (
        Options(set_to_none=False),
        ("gan", "dcgan128"),
        "set_to_none=True",
    ),
    "D not frozen in the G step": (
        Options(freeze_d=False),
        ("gan", "dcgan128"),
        "D frozen (toggle_optimizer)",
    ),
    "G forward twice per batch": (
        Options(g_forward_once=False),
        ("gan", "dcgan128"),
        "one G forward per batch",
    ),
    "Adam for-loop (torch's CPU default)": (
        Options(adam="single"),
        ("gan", "dcgan128", "vae"),
        "fused=True (conf/model/optimizer/adam.yaml)",
    ),
    "Adam foreach=True": (Options(adam="foreach"), ("gan", "dcgan128", "vae"), "fused=True"),
    "NCHW (PyTorch's default layout)": (
        Options(channels_last=False),
        ("dcgan64", "dcgan128"),
        "channels_last (callbacks.memory_format)",
    ),
    "bf16 autocast": (
        Options(autocast="bf16"),
        ("dcgan64", "dcgan128"),
        "trainer.precision=bf16-mixed is an option",
    ),
    "log every step (.item())": (
        Options(log_every=1),
        ("gan",),
        "no per-step host reads (Lightning logs every 50)",
    ),
    "torch.compile (nets)": (Options(compile=True), ("gan", "dcgan64"), "not used"),
}


#: Every measured path, in the order of the first repeat (later repeats rotate it).
PATHS = (
    "plain",
    "project",
    "project_bare",
    "project_stock",
    "plain_tv0",
    "plain_tv2",
    "plain_bf16",
    "project_bf16",
)


@contextlib.contextmanager
def plain_pytorch_env() -> Iterator[None]:
    """The plain loop runs as plain PyTorch would: without the NVML-based CUDA check that
    importing Lightning switches on (it makes every ``optimizer.step()`` slower on machines
    without a GPU; see BENCHMARKS.md)."""
    saved = os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = saved


# --------------------------------------------------------------------------- environment
def machine_info(threads: int) -> dict[str, Any]:
    cpu, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": " ".join(isa) or "-",
        "threads": threads,
        "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    import hydra
    import pytorch_lightning
    import torchvision

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
        "hydra": hydra.__version__,
    }
    with contextlib.suppress(ImportError):
        import wandb

        out["wandb"] = wandb.__version__
    return out


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def ensure_data() -> None:
    """MNIST and the digit classifier, fetched/trained the usual way if missing, so that no
    measurement includes a download or a training run."""
    from gan_lightning.data.sources.mnist import ensure_mnist
    from gan_lightning.metrics.classifier import default_classifier_path, ensure_classifier

    ensure_mnist(data_dir())
    path = default_classifier_path(data_dir())
    if not path.is_file():
        ensure_classifier(path, data_dir())


# --------------------------------------------------------------------------- measurements
def measure(
    case_name: str, path: str, datas: dict[str, Any], seconds: float, quick: bool
) -> Timing:
    from benchmarks.project import time_project

    case = {**CASES, **GPU_CASES}[case_name]
    warmup = 3 if quick else case.warmup_steps
    device = datas[case_name].device
    if case.synthetic and (not path.startswith("plain") or path.startswith("plain_tv")):
        raise SkipPath("synthetic images: the plain loop on in-memory tensors only")
    if path.startswith("plain"):
        options = Options(autocast="bf16") if path == "plain_bf16" else Options()
        feeder = {"plain_tv0": "torchvision0", "plain_tv2": "torchvision2"}.get(path, "memory")
        with plain_pytorch_env():
            return time_plain(datas[case_name], options, feeder, warmup, seconds)
    # fp32 unless the path says bf16, like the plain loop it is compared with (the default
    # trainer.precision may be `auto`, which can pick bf16 on CPUs with native bf16).
    variant, extra, stock = path, ("trainer.precision=32-true",), False
    if path == "project_bf16":
        variant, extra = "project", ("trainer.precision=bf16-mixed",)
    elif path == "project_stock":  # without gan_lightning.runtime.compat.speed_up_lightning
        variant, stock = "project", True
    elif path.startswith("proto_"):  # proto_<Class>[_bare]: a prototype of benchmarks.prototypes
        name = path.removeprefix("proto_")
        variant = "project_bare" if name.endswith("_bare") else "project"
        kind = "VAE" if datas[case_name].kind == "vae" else "GAN"
        cls = name.removesuffix("_bare").replace("*", kind)
        extra = (*extra, f"model._target_=benchmarks.prototypes.{cls}")
    quick_case = case if not quick else type(case)(**{**case.__dict__, "warmup_steps": warmup})
    return time_project(quick_case, variant, extra, seconds, stock_lightning=stock, device=device)


class SkipPath(Exception):
    """A path that does not apply to a case (not measured, not an error)."""


def time_loader(data: Any, seconds: float) -> dict[str, float]:
    """Images per second of the project's training loader alone (MNIST as ``train.py``
    builds it), each batch copied to the case's device, the device synchronized at the window's
    ends: what the data side can feed a GPU, without any training."""
    from benchmarks.plain import synchronize
    from gan_lightning.utils.batches import images_of

    datamodule = instantiate(data.cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    images, batches = 0, iter(datamodule.train_dataloader())
    images_of(next(batches)).to(data.device)  # workers started, first batch ready
    synchronize(data.device)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        try:
            batch = images_of(next(batches)).to(data.device, non_blocking=True)
        except StopIteration:
            batches = iter(datamodule.train_dataloader())
            continue
        images += batch.shape[0]
    synchronize(data.device)
    elapsed = time.perf_counter() - start
    return {"images_per_s": images / elapsed, "images": images, "seconds": elapsed}


def interleaved(
    cases: list[str],
    paths: list[str],
    repeats: int,
    seconds: float,
    datas: dict[str, Any],
    quick: bool,
) -> list[dict[str, Any]]:
    """Every (case, path) once per repeat; the path order rotates between repeats."""
    out = []
    for repeat in range(repeats):
        for case in cases:
            order = paths[repeat % len(paths) :] + paths[: repeat % len(paths)]
            for path in order:
                entry: dict[str, Any] = {"case": case, "path": path, "repeat": repeat}
                try:
                    entry.update(measure(case, path, datas, seconds, quick).as_dict())
                except SkipPath:
                    continue
                try:
                    log.warning(
                        "repeat %d %-10s %-14s %8.0f img/s (median step %8.0f)",
                        repeat,
                        case,
                        path,
                        entry["images_per_s"],
                        entry["median_images_per_s"],
                    )
                except Exception as err:  # noqa: BLE001 - a failing path is a finding
                    entry["error"] = f"{type(err).__name__}: {err}"
                    entry["traceback"] = traceback.format_exc()[-4000:]
                    log.warning("repeat %d %s %s failed: %s", repeat, case, path, entry["error"])
                out.append(entry)
    return out


def fast_paths(
    cases: list[str], repeats: int, seconds: float, datas: dict[str, Any], quick: bool
) -> dict[str, dict[str, Any]]:
    """Each variant against the default plain loop measured right before it."""
    out: dict[str, dict[str, Any]] = {}
    for label, (options, for_cases, project_choice) in FAST_PATHS.items():
        if quick and options.compile:
            continue
        if quick:  # smoke test: every variant once, on the first case
            for_cases = tuple(cases[:1])
        for case in (c for c in for_cases if c in cases):
            ratios, rates, base_rates, compile_s = [], [], [], []
            n = 1 if options.compile else repeats  # compiling once is long enough
            warmup = 3 if quick else CASES[case].warmup_steps
            if options.compile:  # recompilations (D frozen / not) happen in the first steps
                warmup = max(warmup, 10)
            try:
                for _ in range(n):
                    with plain_pytorch_env():
                        base = time_plain(datas[case], Options(), "memory", warmup, seconds)
                        timed = time_plain(datas[case], options, "memory", warmup, seconds)
                    ratios.append(timed.images_per_s / base.images_per_s)
                    rates.append(timed.images_per_s)
                    base_rates.append(base.images_per_s)
                    compile_s.append(timed.compile_s)
                entry = {
                    "project": project_choice,
                    "images_per_s": report.median(rates),
                    "default_images_per_s": report.median(base_rates),
                    "ratio": report.median(ratios),
                    "compile_s": report.median(compile_s),
                }
            except Exception as err:  # noqa: BLE001
                entry = {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
            if options.compile:
                torch._dynamo.reset()
            log.warning("fast path %-10s %-32s %s", case, label, entry)
            out.setdefault(case, {})[label] = entry
    return out


# --------------------------------------------------------------------------- main
def check_device(device: str) -> str | None:
    """Why ``--device`` cannot be measured here (one line), or ``None``."""
    if device == "cpu":
        return None
    if device != "cuda":
        return f"--device {device!r} is not known; use cpu or cuda."
    if not torch.cuda.is_available():
        return (
            "--device cuda: this machine has no usable CUDA GPU (torch.cuda.is_available() is "
            "False); run `make bench` without it, or on a GPU machine."
        )
    return None


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (< 1 min)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--seconds", type=float, default=None, help="timed window per run")
    parser.add_argument("--cases", default=None, help=f"comma list of {sorted(CASES)}")
    parser.add_argument("--out", default=None, help="directory for BENCHMARKS.md/.json")
    parser.add_argument(
        "--paths",
        default=None,
        help=f"comma list of {PATHS}, or proto_<Class>[_bare] (benchmarks/prototypes.py; "
        "'*' in the class name is GAN or VAE by case, e.g. proto_LeanLog*)",
    )
    parser.add_argument("--skip", default="", help="comma list: fast_paths,startup,default_run")
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu, or cuda: the plain loop and the project on the GPU, plus the GPU-only cases "
        f"{sorted(GPU_CASES)} and the loader's images/s",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    device_error = check_device(args.device)
    if device_error:
        print(f"Error: {device_error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    import pytorch_lightning  # noqa: F401 - it sets its loggers' levels when imported

    for noisy in ("pytorch_lightning", "lightning_fabric", "lightning", "gan_lightning"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    started = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    seconds = args.seconds or (0.3 if quick else 2.0)
    cases = args.cases.split(",") if args.cases else (["gan", "dcgan64"] if quick else list(CASES))
    if args.device != "cpu" and not args.cases:
        cases += list(GPU_CASES)
    skip = set(filter(None, args.skip.split(",")))
    out_dir = Path(args.out) if args.out else (REPO / "logs" / "bench" if quick else REPO)
    out_dir.mkdir(parents=True, exist_ok=True)

    from benchmarks.flops import measure_peaks, step_flops

    ensure_data()
    record: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python -m benchmarks.bench "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "mode": "quick" if quick else "full",
        "device": args.device,
        "repeats": repeats,
        "seconds": seconds,
        "machine": machine_info(threads),
        "versions": versions(),
        "git_commit": git_commit(),
    }
    log.warning("measuring peaks ...")
    record["peaks_gflops"] = (measure_peaks(0.05, 2) if quick else measure_peaks()).as_dict()
    every_case = {**CASES, **GPU_CASES}
    datas = {}
    for name in cases:
        cfg = compose_config(every_case[name].overrides, out_dir / "tmp")
        if every_case[name].synthetic:
            datas[name] = synthetic_case_data(cfg, every_case[name].synthetic, args.device)
        else:
            datas[name] = load_case_data(cfg, args.device)
    record["cases"] = {
        name: {
            "description": every_case[name].description,
            "overrides": list(every_case[name].overrides),
            "batch_size": datas[name].batch_size,
        }
        for name in cases
    }
    if args.device != "cpu":
        loader_case = next(n for n in cases if not every_case[n].synthetic)
        record["loader"] = {"case": loader_case, **time_loader(datas[loader_case], seconds)}
        log.warning("loader alone (%s): %s", loader_case, record["loader"])
    with plain_pytorch_env():
        record["flops"] = {name: step_flops(datas[name]) for name in cases}
    paths = args.paths.split(",") if args.paths else list(PATHS)
    record["measurements"] = interleaved(cases, paths, repeats, seconds, datas, quick)
    if "fast_paths" not in skip:
        record["fast_paths"] = fast_paths(cases, repeats, seconds, datas, quick)
    if "startup" not in skip:
        from benchmarks.startup import measure_plain_startup, measure_startup

        log.warning("time to first step ...")
        record["startup"] = [
            measure_startup(threads=args.threads) for _ in range(1 if quick else 3)
        ]
        record["plain_startup"] = [
            measure_plain_startup(threads=args.threads) for _ in range(1 if quick else 3)
        ]
    if "default_run" not in skip:
        from benchmarks.default_run import run_default

        log.warning("default run (python train.py) ...")
        overrides = (
            ["trainer.max_epochs=2", "trainer.limit_train_batches=20", "metrics.num_samples=500"]
            if quick
            else []
        )
        record["default_run"] = run_default(overrides, threads=args.threads)
    record["machine"]["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    record["duration_s"] = time.time() - started
    (out_dir / "BENCHMARKS.json").write_text(json.dumps(record, indent=1))
    report.write_section(out_dir / "BENCHMARKS.md", report.render(record))
    print(report.render(record))
    print(f"\nwrote {out_dir / 'BENCHMARKS.md'} and {out_dir / 'BENCHMARKS.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
