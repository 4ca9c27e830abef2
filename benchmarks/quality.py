"""The sample-quality ablation: each technique added in turn, at the same batch budget, scored
the same way, several seeds. Writes the tables of BENCHMARKS.md.

    python -m benchmarks.quality                       # the full table (hours on 2 CPU cores)
    python -m benchmarks.quality --rows dcgan --seeds 1 2 --jobs 2
    python -m benchmarks.quality --rows dcgan mlp precision --budget dcgan=1500 mlp=3000 \
        --jobs 2 --write                               # what BENCHMARKS.md shows (~70 min)
    python -m benchmarks.quality --quick               # a few batches per row (smoke test)

Every row is ``python train.py <overrides> trainer.max_steps=<budget> seed=<s>`` (no scoring
during training), then ``gan-evaluate ckpt=<last.ckpt> metrics.num_samples=10000
metrics.split=test``: 10k samples against the 10k MNIST test images, the project's digit
classifier as feature extractor. The rows are cumulative, each keeping every technique above it:
baseline -> + EMA -> + hinge & spectral norm -> + TTUR -> + R1 -> + DiffAugment -> conditional.
Training wall time is measured per run (``--jobs 2`` runs two at a time with one thread each:
compare times only within one invocation). The ``precision`` table trains each model in fp32
and in bf16-mixed for the same batches: the quality check behind ``trainer.precision=auto``.
The ``unconditional`` table puts label-free coverage techniques on top of ``mnist_best``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "quality_results.json"
MARK_BEGIN = "<!-- quality-ablation:begin -->"
MARK_END = "<!-- quality-ablation:end -->"

EMA = ["model.ema_decay=0.999"]
HINGE_SN = [
    "model.objective=hinge",
    "model.discriminator.spectral_norm=true",
    "model.discriminator.batch_norm=false",
]
TTUR = ["model.optimizer_g.lr=1e-4", "model.optimizer_d.lr=4e-4"]
R1 = ["model.r1_gamma=1.0", "model.r1_every=16"]
DIFFAUG = ["model.augment=[translation,cutout]"]
CONDITIONAL = {
    "acgan": ["model.num_classes=10", "model.conditioning=acgan"],
    "projection": ["model.num_classes=10", "model.conditioning=projection"],
}


def chain(base: list[str]) -> list[tuple[str, list[str]]]:
    """The cumulative rows over one base model."""
    rows = [("baseline", base)]
    for name, extra in (
        ("+ EMA", EMA),
        ("+ hinge & SN", HINGE_SN),
        ("+ TTUR", TTUR),
        ("+ R1", R1),
        ("+ DiffAugment", DIFFAUG),
    ):
        rows.append((name, rows[-1][1] + extra))
    full = rows[-1][1]
    rows += [(f"conditional: {k}", full + v) for k, v in CONDITIONAL.items()]
    return rows


#: The unconditional recipe before self-conditioning (mnist_best until 0.2: DCGAN + EMA).
DCGAN_EMA = ["experiment=mnist_best", "model/self_conditioning=none"]


def unconditional_rows() -> list[tuple[str, list[str]]]:
    """DCGAN + EMA and each label-free technique for mode coverage on top of it alone (not
    cumulative): self-conditioning (Liu et al. 2020) on a pixel PCA (today's ``mnist_best``)
    and on D's features, minibatch stddev (Karras et al. 2018), packing (PacGAN, Lin et al.
    2018); then the conditional experiment at the same budget (the target the unconditional
    rows chase). The experiments set their own precision; the budget overrides max_steps."""
    return [
        ("DCGAN + EMA (mnist_best until 0.2)", DCGAN_EMA),
        ("+ self-conditioning, pixels (mnist_best)", ["experiment=mnist_best"]),
        (
            "+ self-conditioning, D features",
            ["experiment=mnist_best", "model/self_conditioning=discriminator"],
        ),
        ("+ minibatch stddev", [*DCGAN_EMA, "model.discriminator.minibatch_std=4"]),
        ("+ packing (2)", [*DCGAN_EMA, "model.discriminator.pack=2"]),
        ("mnist_best_conditional (labels)", ["experiment=mnist_best_conditional"]),
    ]


def precision_rows() -> list[tuple[str, list[str]]]:
    """fp32 and bf16-mixed at the same batches, per model (the bf16-on-CPU quality check)."""
    rows = []
    for model in ("gan", "dcgan", "vae"):
        for precision in ("32-true", "bf16-mixed"):
            rows.append(
                (f"{model} {precision}", [f"model={model}", f"trainer.precision={precision}"])
            )
    return rows


TABLES = {
    # fp32, as measured in BENCHMARKS.md (the default `auto` would train the DCGAN in bf16 on
    # CPUs with native bf16; the precision table compares the two).
    "dcgan": {"rows": chain(["model=dcgan", "trainer.precision=32-true"]), "budget": 6000},
    "mlp": {"rows": chain(["model=gan", "trainer.precision=32-true"]), "budget": 12000},
    "precision": {"rows": precision_rows(), "budget": 1500},
    # mnist_best's own budget (trainer.max_steps=6000, about 8 minutes on 2 cores).
    "unconditional": {"rows": unconditional_rows(), "budget": 6000},
}
COMMON = [
    "metrics=none",
    "logger=csv",
    "trainer.max_epochs=-1",
    "trainer.limit_val_batches=0",
    "trainer.num_sanity_val_steps=0",
    "callbacks.interpolation=null",
    "callbacks.curves=null",
    "callbacks.sample_gif=null",
    "callbacks.progress.style=lines",
]


def run_one(out: Path, overrides: list[str], budget: int, seed: int, threads: int) -> dict:
    env = {**os.environ, "WANDB_MODE": "offline"}
    out.mkdir(parents=True, exist_ok=True)
    train = [
        sys.executable, "train.py", *overrides, *COMMON,
        f"trainer.max_steps={budget}", f"seed={seed}", f"num_threads={threads}",
        f"hydra.run.dir={out}",
    ]  # fmt: skip
    start = time.perf_counter()
    with open(out / "train.out", "w") as log:
        done = subprocess.run(train, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        return {"error": f"training failed (see {out / 'train.out'})", "train_seconds": seconds}
    evaluate = [
        sys.executable, "-m", "gan_lightning.evaluate", f"ckpt={out / 'checkpoints' / 'last.ckpt'}",
        "metrics.num_samples=10000", "metrics.split=test", f"output={out / 'eval.json'}",
    ]  # fmt: skip
    with open(out / "eval.out", "w") as log:
        subprocess.run(evaluate, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        [row] = json.loads((out / "eval.json").read_text())["results"]
    except (OSError, ValueError, KeyError) as err:
        return {"error": f"evaluation failed ({err}; see {out / 'eval.out'})"}
    keep = ("fid_digits", "kid_mean_digits", "is_digits", "classes_covered_digits")
    scores = {k: row[k] for k in keep}
    for key in ("label_agreement_digits", "precision_digits", "recall_digits", "intra_fid_digits"):
        scores[key] = row.get(key)
    return {**scores, "train_seconds": round(seconds, 1)}


def mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def table_lines(table: str, rows: dict, meta: dict) -> list[str]:
    lines = [
        f"**{table}**: {meta['budgets'][table]} batches of {meta['batch_size']}, "
        f"{meta['seeds']} seeds per row (mean ± std); measured {meta['date']} on {meta['machine']}.",
        "",
        "| row | FID_digits | KID | IS | classes | label agreement | precision | recall "
        "| intra-FID | wall time per run (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            lines.append(f"| {name} | failed | | | | | | | | |")
            continue

        def col(key: str, ok: list = ok) -> str:
            return mean_std([r.get(key) for r in ok])

        lines.append(
            f"| {name} | {col('fid_digits')} | {col('kid_mean_digits')} | {col('is_digits')} "
            f"| {col('classes_covered_digits')} | {col('label_agreement_digits')} "
            f"| {col('precision_digits')} | {col('recall_digits')} | {col('intra_fid_digits')} "
            f"| {col('train_seconds')} |"
        )
    return [*lines, ""]


INTRO = (
    "Scores of 10k samples against the 10k MNIST test images (the project's digit classifier); "
    "wall time is the training process's, startup included, with two runs sharing the CPU."
)


def markdown(results: dict, meta: dict) -> str:
    """The tables of one invocation."""
    lines = [MARK_BEGIN, INTRO, ""]
    for table, rows in results.items():
        lines += table_lines(table, rows, meta)
    return "\n".join([*lines, MARK_END])


def markdown_tables(tables: dict) -> str:
    """Every table measured so far, each with its own budget, date and machine."""
    lines = [MARK_BEGIN, INTRO, ""]
    for table in TABLES:
        if table in tables:
            lines += table_lines(table, tables[table]["results"], tables[table]["meta"])
    return "\n".join([*lines, MARK_END])


def write_section(text: str, path: Path = REPO / "BENCHMARKS.md") -> None:
    content = path.read_text() if path.exists() else ""
    if MARK_BEGIN in content:
        head, rest = content.split(MARK_BEGIN, 1)
        tail = rest.split(MARK_END, 1)[1] if MARK_END in rest else ""
        content = head + text + tail
    else:
        content = content.rstrip() + "\n\n## Sample-quality ablation\n\n" + text + "\n"
    path.write_text(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=sorted(TABLES), choices=sorted(TABLES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (1 thread each if >1)")
    parser.add_argument("--out", default=str(REPO / "logs" / "quality"))
    parser.add_argument("--quick", action="store_true", help="5 batches per row (smoke test)")
    parser.add_argument(
        "--budget",
        nargs="+",
        default=[],
        metavar="TABLE=BATCHES",
        help="another batch budget for a table, e.g. dcgan=1500 (the table says which it used)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="ROW",
        help="only these rows (names as in the table)",
    )
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md's section")
    args = parser.parse_args(argv)
    threads = 1 if args.jobs > 1 else (os.cpu_count() or 1)
    budgets = {table: spec["budget"] for table, spec in TABLES.items()}
    for item in args.budget:
        table, _, batches = item.partition("=")
        if table not in TABLES or not batches.isdigit() or int(batches) < 1:
            parser.error(f"--budget {item}: expected TABLE=BATCHES with TABLE in {sorted(TABLES)}")
        budgets[table] = int(batches)
    if args.quick:
        budgets = dict.fromkeys(budgets, 5)
    jobs = []
    for seed in args.seeds:  # every row's first seed first: a whole table early, then repeats
        for table in args.rows:
            for name, overrides in TABLES[table]["rows"]:
                if args.only and name not in args.only:
                    continue
                slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
                out = Path(args.out) / table / f"{slug}_seed{seed}"
                jobs.append((table, name, out, overrides, budgets[table], seed))
    results: dict = {}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [
            (table, name, pool.submit(run_one, out, overrides, budget, seed, threads))
            for table, name, out, overrides, budget, seed in jobs
        ]
        for table, name, future in futures:
            row = future.result()
            results.setdefault(table, {}).setdefault(name, []).append(row)
            print(f"{table:6s} {name:26s} {row}", flush=True)
            partial = Path(args.out) / "quality_results.partial.json"  # hours of runs: keep each
            partial.write_text(json.dumps({"results": results}, indent=2) + "\n")
    from benchmarks.bench import machine_info

    info = machine_info(threads)
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{info['cpu']} ({info['cores']} cores; {args.jobs} run(s) at a time, "
        f"{threads} thread(s) each)",
        "seeds": len(args.seeds),
        "batch_size": 64,
        "quick": args.quick,
        "budgets": {table: budgets[table] for table in args.rows},
        "jobs": args.jobs,
    }
    record = {"meta": meta, "results": results}
    (Path(args.out) / "quality_results.json").write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(results, meta))
    if args.write and not args.quick:
        # Tables measured another time stay, with the machine and budget they were measured on.
        merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"tables": {}}
        for table in results:
            old = merged["tables"].get(table)
            if old and old["meta"]["budgets"].get(table) == meta["budgets"][table]:
                # Rows measured another time at the same budget stay (each row's runs are one
                # invocation's); the table's date and machine become this invocation's.
                results[table] = {**old["results"], **results[table]}
            merged["tables"][table] = {"meta": meta, "results": results[table]}
        RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
        write_section(markdown_tables(merged["tables"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
