"""The checks of a run on a CUDA GPU that a CPU cannot make, and the figures worth having from
the first GPU the project meets. Started by ``scripts/gpu_check.sh`` (which adds the
benchmark); ``--dry-run`` runs every part on the CPU at tiny sizes (tests/test_gpu_check.py
runs it in the suite, so the script does not rot between GPUs).

No network and no data set: the images are synthetic (smooth coloured blobs), FID is measured
with a fixed, randomly initialised convolutional feature extractor (enough to compare two runs
on the same images; not comparable with published FIDs).

Report, in order:

1. device and versions;
2. random streams per rank after an evaluation (issue 17, point 1): the metrics' seeded block
   must leave the current CUDA generator where it was, and the ranks' streams apart;
3. a checkpoint's CUDA random states with fewer visible GPUs than ranks (point 2);
4. ``trainer.precision=16-mixed`` for a GAN: refused in one line naming bf16-mixed (point 4);
5. what ``trainer.precision=auto`` chooses on this GPU, and TF32 / cudnn.benchmark (point 5);
6. DCGAN 64x64, batch 128: training images/s in 32-true and bf16-mixed;
7. the image-folder data loader's images/s (JPEG files) against what training consumes;
8. the bf16 quality check behind point 5: same batches, FID of bf16-mixed vs 32-true, against
   the spread of 32-true over two seeds.

Exit code 1 when a check failed; figures are printed, never judged against fixed numbers.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    side: int  # DCGAN image side
    batch: int
    base_width: int
    warmup_steps: int  # real batches before the timed window
    timed_steps: int
    quality_steps: int  # real batches per quality run
    quality_images: int  # training images and FID samples
    loader_images: int  # JPEG files for the loader
    loader_workers: int


GPU = Sizes(64, 128, 64, 15, 60, 800, 4096, 4096, 8)
DRY = Sizes(16, 8, 8, 1, 2, 3, 64, 32, 0)


class Report:
    """Lines as they come, and a tally: a failed check makes the exit code 1."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def section(self, title: str) -> None:
        print(f"\n== {title}", flush=True)

    def line(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        print(f"   [{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""),
              flush=True)  # fmt: skip
        if ok:
            self.passed += 1
        else:
            self.failed.append(name)

    def run(self, title: str, part: Callable[[], None]) -> None:
        """One part; an exception fails it and the report goes on with the next."""
        self.section(title)
        try:
            part()
        except Exception as err:  # noqa: BLE001 - reported, counted, and the rest still runs
            self.check(title, False, f"{type(err).__name__}: {str(err).splitlines()[0][:300]}")


# --------------------------------------------------------------------------- synthetic data
def blobs(n: int, side: int, seed: int, height: int | None = None) -> torch.Tensor:
    """``n`` RGB images in [-1, 1] (n, 3, H, W): a colour gradient and three soft blobs each,
    deterministic in ``seed``. Varied enough that a GAN has something to learn."""
    height = height or side
    g = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height).view(1, 1, height, 1)
    xs = torch.linspace(0, 1, side).view(1, 1, 1, side)
    base = torch.rand(n, 3, 1, 1, generator=g) * (0.4 + 0.6 * ys) + 0.3 * xs * torch.rand(
        n, 3, 1, 1, generator=g
    )
    for _ in range(3):
        cy, cx = torch.rand(n, 1, 1, 1, generator=g), torch.rand(n, 1, 1, 1, generator=g)
        radius = 0.05 + 0.2 * torch.rand(n, 1, 1, 1, generator=g)
        colour = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
        weight = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * radius**2))
        base = base * (1 - weight) + colour * weight
    return base.clamp(-1, 1)


def write_jpegs(folder: Path, n: int, seed: int) -> None:
    """CelebA-sized (178x218) JPEG files, so decoding costs what it costs on CelebA."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, n, 256):
        images = blobs(min(256, n - start), 178, seed + start, height=218)
        pixels = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for i, array in enumerate(pixels):
            Image.fromarray(array).save(folder / f"{start + i:06d}.jpg", quality=90)


# --------------------------------------------------------------------------- features / FID
def random_extractor(device: torch.device) -> Any:
    """A frozen, randomly initialised conv net (fixed seed) as the project's FeatureExtractor."""
    from gan_lightning.metrics.extractors import FeatureExtractor, InputSpec

    class RandomConv(FeatureExtractor):
        name = "random"
        spec = InputSpec(channels=3, size=None, dtype=torch.float32)
        num_features = 64

        def __init__(self) -> None:
            super().__init__()
            generator_state = torch.get_rng_state()
            torch.manual_seed(1234)
            self.net = nn.Sequential(
                nn.Conv2d(3, 32, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )  # fmt: skip
            torch.set_rng_state(generator_state)

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
            return self.net(images * 2 - 1).double(), None

    return RandomConv().freeze().to(device)


def scorer(device: torch.device, subset: int) -> Any:
    from gan_lightning.metrics.scores import Scorer

    return Scorer(random_extractor(device), kid_subsets=4, kid_subset_size=subset,
                  is_splits=1, seed=0, batch_size=256).to(device)  # fmt: skip


# --------------------------------------------------------------------------- 1. versions
def versions(report: Report, device: torch.device) -> None:
    import pytorch_lightning as pl
    import torchmetrics

    report.line(f"python {platform.python_version()}, torch {torch.__version__}, "
                f"lightning {pl.__version__}, torchmetrics {torchmetrics.__version__}")  # fmt: skip
    report.line(f"CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report.line(f"{props.name}: compute capability {props.major}.{props.minor}, "
                    f"{props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs, "
                    f"{torch.cuda.device_count()} visible")  # fmt: skip
        report.line(f"native bf16: {torch.cuda.is_bf16_supported(including_emulation=False)}")
    else:
        report.line(
            f"dry run on {platform.processor() or 'CPU'} ({torch.get_num_threads()} threads)"
        )


# --------------------------------------------------------------------------- 2. streams
def streams_after_evaluation(report: Report, device: torch.device) -> None:
    """Each "rank" (one GPU here: the ranks' seeding done in turn in this process) draws z on
    the device, is scored, and draws again: the second draw must continue the rank's own
    stream (not restart from the metrics' seed, not equal the other rank's)."""
    from gan_lightning.modules.base import seed_rank_stream

    real = blobs(64, 16, seed=1).to(device)
    after, before, seeded = {}, {}, {}
    for rank in (0, 1):
        torch.manual_seed(5)
        seed_rank_stream(rank)
        before[rank] = torch.randn(8, device=device)
        untouched = (
            torch.get_rng_state(),
            (torch.cuda.get_rng_state() if device.type == "cuda" else None),
        )
        scores = scorer(device, subset=16)
        scores.add_real([real], (-1, 1))
        scores.add_generated([real.flip(0) * 0.5], (-1, 1))
        scores.compute()
        after[rank] = torch.randn(8, device=device)
        torch.set_rng_state(untouched[0])
        if untouched[1] is not None:
            torch.cuda.set_rng_state(untouched[1])
        expected = torch.randn(8, device=device)
        report.check(f"rank {rank}: the stream continues after an evaluation",
                     torch.equal(after[rank], expected))  # fmt: skip
        torch.manual_seed(scores.seed)  # what a reseed by the metrics would have drawn
        seeded[rank] = torch.randn(8, device=device)
    report.check(
        "the ranks' streams differ after an evaluation", not torch.equal(after[0], after[1])
    )
    report.check("no stream restarts from the metrics' seed",
                 all(not torch.equal(after[r], seeded[r]) for r in (0, 1)))  # fmt: skip
    report.check("a stream after an evaluation is not the one before it",
                 all(not torch.equal(after[r], before[r]) for r in (0, 1)))  # fmt: skip


# --------------------------------------------------------------------------- 3. RNG restore
def rng_restore_with_fewer_devices(report: Report, device: torch.device) -> None:
    """A checkpoint written by more ranks than this machine has GPUs (and an old one with a
    per-device list): each rank restores its own row on its current device, nothing raises."""
    from gan_lightning.modules.base import capture_rng, restore_rng

    visible = torch.cuda.device_count() if device.type == "cuda" else 0
    saved = capture_rng()
    if device.type == "cuda":
        rows = []
        for seed in range(visible + 1):  # one rank more than there are GPUs
            torch.cuda.manual_seed(seed)
            rows.append(torch.cuda.get_rng_state())
        saved["cuda"] = torch.stack(rows)
        report.line(f"saved CUDA state: {tuple(saved['cuda'].shape)} for {visible} visible GPU(s)")
        for rank in (visible, visible - 1):
            restore_rng(saved, rank)
            drawn = torch.randn(4, device=device)
            torch.cuda.set_rng_state(rows[rank])
            report.check(f"rank {rank} restores its own CUDA row",
                         torch.equal(drawn, torch.randn(4, device=device)))  # fmt: skip
        old = {**saved, "cuda": rows[:1]}  # get_rng_state_all() of a 1-GPU run
        before = torch.cuda.get_rng_state()
        restore_rng(old, rank=visible)  # a rank beyond it: keeps its own stream
        report.check("an old per-device list leaves a rank beyond it alone",
                     torch.equal(torch.cuda.get_rng_state(), before))  # fmt: skip
        report.check("capture_rng keeps the current device's state only",
                     capture_rng()["cuda"].dim() == 1)  # fmt: skip
    else:
        restore_rng({**saved, "cuda": [torch.zeros(4, dtype=torch.uint8)]}, rank=3)
        report.check("dry run: a CUDA state in a CPU run is ignored", capture_rng()["cuda"] == [])


# --------------------------------------------------------------------------- 4. fp16
def compose(overrides: list[str], output_dir: Path) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import open_dict

    from gan_lightning.train import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
    return cfg


def base_overrides(folder: Path, sizes: Sizes, accelerator: str) -> list[str]:
    return [
        "model=dcgan", "data=image_folder", f"data.path={folder}", f"data.image_size={sizes.side}",
        f"data.batch_size={sizes.batch}", f"data.num_workers={sizes.loader_workers}",
        f"data.persistent_workers={sizes.loader_workers > 0}", "data.val_size=0.05",
        f"model.generator.base_width={sizes.base_width}",
        f"model.discriminator.base_width={sizes.base_width}",
        f"trainer.accelerator={accelerator}", "trainer.devices=1", "logger=none", "metrics=none",
        "callbacks.interpolation=null",
    ]  # fmt: skip


def fp16_mixed(report: Report, folder: Path, sizes: Sizes, accelerator: str, tmp: Path) -> None:
    from gan_lightning.errors import ConfigError
    from gan_lightning.train import build

    cfg = compose([*base_overrides(folder, sizes, accelerator), "trainer.precision=16-mixed"], tmp)
    try:
        build(cfg)
    except ConfigError as err:
        message = str(err)
        report.line(f"Error: {message}")
        report.check("16-mixed is refused for GANs in one line naming bf16-mixed",
                     "bf16-mixed" in message and "\n" not in message)  # fmt: skip
        return
    report.check("16-mixed is refused for GANs", False, "build() accepted it")


# --------------------------------------------------------------------------- 5. auto
def precision_auto(report: Report, device: torch.device) -> None:
    from gan_lightning.runtime import precision

    accelerator = "gpu" if device.type == "cuda" else "cpu"
    for convolutional in (True, False):
        report.line(precision.describe_choice(accelerator, convolutional))
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        chosen = precision.resolve_precision("auto", accelerator, True)
        report.check("auto picks bf16-mixed for conv nets exactly where bf16 is native",
                     (chosen == "bf16-mixed") == native, chosen)  # fmt: skip
        before = torch.get_float32_matmul_precision()
        trainer: dict = {}
        precision.tune_cuda(trainer, None)
        report.check("auto sets TF32 matmuls and cudnn.benchmark",
                     torch.get_float32_matmul_precision() == "high" and trainer["benchmark"])  # fmt: skip
        torch.set_float32_matmul_precision(before)


# --------------------------------------------------------------------------- 6-8. training
def make_timer(warmup: int, device: torch.device) -> Any:
    """A callback timing the real batches after ``warmup`` (synchronising the GPU)."""
    import pytorch_lightning as pl

    class Timer(pl.Callback):
        def __init__(self) -> None:
            self.start: float | None = None
            self.end: float | None = None
            self.images = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()
            seen = pl_module.batches_seen
            if seen == warmup:
                self.start = time.perf_counter()
            elif seen > warmup:
                images = batch[0] if isinstance(batch, (list, tuple)) else batch
                self.images += images.shape[0]
                self.end = time.perf_counter()

        def rate(self) -> float:
            if self.start is None or self.end is None or self.end <= self.start:
                return float("nan")
            return self.images / (self.end - self.start)

    return Timer()


def train_dcgan(
    sizes: Sizes, device: torch.device, precision: str, steps: int, seed: int,
    images: torch.Tensor, warmup: int = 0,
) -> tuple[Any, float]:  # fmt: skip
    """A DCGAN trained for ``steps`` real batches on in-memory ``images`` (same batches for the
    same seed); returns the module and the images/s after ``warmup`` batches."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate
    from torch.utils.data import DataLoader

    from gan_lightning.data.loaders import passthrough_collate
    from gan_lightning.data.tensors import TensorImageDataset

    pl.seed_everything(seed, workers=True, verbose=False)
    cfg = compose(
        ["model=dcgan", "data=image_folder", f"data.image_size={sizes.side}",
         f"model.generator.base_width={sizes.base_width}",
         f"model.discriminator.base_width={sizes.base_width}"],
        Path(tempfile.gettempdir()),
    )  # fmt: skip
    model = instantiate(cfg.model)
    data = TensorImageDataset(images, torch.zeros(images.shape[0], dtype=torch.long))
    loader = DataLoader(data, batch_size=sizes.batch, shuffle=True, drop_last=True,
                        collate_fn=passthrough_collate, pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    timer = make_timer(warmup, device)
    memory_format = instantiate(cfg.callbacks.memory_format)  # channels_last, as in training
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, precision=precision,
        max_steps=model.optimizer_steps_for(steps), max_epochs=-1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, limit_val_batches=0, callbacks=[memory_format, timer],
        benchmark=device.type == "cuda",
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=loader)
    return model, timer.rate()


def throughput(report: Report, sizes: Sizes, device: torch.device, results: dict) -> None:
    images = blobs(sizes.batch * 8, sizes.side, seed=7)
    precisions = ["32-true", "bf16-mixed"]
    before = torch.get_float32_matmul_precision()
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # what precision=auto sets on CUDA
    for precision in precisions:
        _, rate = train_dcgan(sizes, device, precision, sizes.warmup_steps + sizes.timed_steps,
                              seed=0, images=images, warmup=sizes.warmup_steps)  # fmt: skip
        results[precision] = rate
        report.line(f"DCGAN {sizes.side}x{sizes.side}, batch {sizes.batch}, {precision}: "
                    f"{rate:,.0f} images/s")  # fmt: skip
    torch.set_float32_matmul_precision(before)
    fp32 = "32-true (TF32)" if device.type == "cuda" else "32-true"
    report.line(f"bf16-mixed / {fp32}: {results['bf16-mixed'] / results['32-true']:.2f}x")


def loader_rate(report: Report, folder: Path, sizes: Sizes, accelerator: str, tmp: Path,
                results: dict) -> None:  # fmt: skip
    """The image-folder loader as training uses it (JPEG decode, crop, resize, workers)."""
    from hydra.utils import instantiate

    cfg = compose(base_overrides(folder, sizes, accelerator), tmp)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    seen, start = 0, None
    for i, batch in enumerate(loader):
        if i == 1:  # after the workers' start-up
            start, seen = time.perf_counter(), 0
        seen += (batch[0] if isinstance(batch, (list, tuple)) else batch).shape[0]
    if start is None:
        report.line("loader: one batch only (too few images to time it)")
        return
    rate = seen / (time.perf_counter() - start)
    consumed = max(results.get("bf16-mixed", float("nan")), results.get("32-true", float("nan")))
    report.line(f"image-folder loader ({sizes.loader_workers} workers, {len(loader)} batches of "
                f"{sizes.batch}): {rate:,.0f} images/s")  # fmt: skip
    if math.isfinite(consumed):
        verdict = "keeps up" if rate >= consumed else "is the bottleneck: raise data.num_workers"
        report.line(f"training consumes {consumed:,.0f} images/s: the loader {verdict} "
                    f"({rate / consumed:.2f}x)")  # fmt: skip


def fid_of(model: Any, real: torch.Tensor, device: torch.device, n: int) -> float:
    scores = scorer(device, subset=min(100, n // 2))
    scores.add_real([real[:n].to(device)], (-1, 1))
    z = model.sample_latent(n, torch.Generator().manual_seed(99), device=device)
    model.to(device)
    scores.add_generated([model.generate(z)], model.pixel_range)
    return scores.compute()["fid_random"]


def quality(report: Report, sizes: Sizes, device: torch.device, dry_run: bool) -> None:
    """bf16-mixed vs 32-true on the same batches (same seed), against 32-true's seed spread."""
    images = blobs(sizes.quality_images, sizes.side, seed=3)
    fids = {}
    for name, precision, seed in (("fp32 seed 0", "32-true", 0), ("fp32 seed 1", "32-true", 1),
                                  ("bf16 seed 0", "bf16-mixed", 0)):  # fmt: skip
        model, _ = train_dcgan(sizes, device, precision, sizes.quality_steps, seed, images)
        fids[name] = fid_of(model, images, device, min(sizes.quality_images, 2048))
        report.line(f"{name} ({precision}, {sizes.quality_steps} batches): FID {fids[name]:.4g}")
    noise = abs(fids["fp32 seed 0"] - fids["fp32 seed 1"])
    gap = abs(fids["bf16 seed 0"] - fids["fp32 seed 0"])
    report.line(f"bf16 vs fp32 (same batches): {gap:.4g}; fp32 seed 0 vs seed 1: {noise:.4g}")
    if dry_run:
        report.line("dry run: sizes too small to judge; on a GPU: PASS when gap <= 2 x seed spread")
        return
    report.check("bf16-mixed within seed noise of 32-true", gap <= 2 * noise + 1e-6,
                 f"{gap:.4g} <= 2 x {noise:.4g}")  # fmt: skip


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="everything on the CPU at tiny sizes (CI: keeps the script working)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("Error: no CUDA GPU visible; run on a GPU machine, or --dry-run on CPU.",
              file=sys.stderr)  # fmt: skip
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    sizes = DRY if args.dry_run else GPU
    accelerator = "cpu" if args.dry_run else "gpu"
    if args.dry_run:
        torch.set_num_threads(1)
    import logging
    import warnings

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger(f"{name}.utilities.rank_zero").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    report = Report()
    results: dict[str, float] = {}
    started = time.perf_counter()
    print(f"gan-lightning GPU check{' (dry run, CPU, tiny sizes)' if args.dry_run else ''}")
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "images"
        write_jpegs(folder, sizes.loader_images, seed=11)
        report.run("1. device and versions", lambda: versions(report, device))
        report.run("2. random streams per rank after an evaluation",
                   lambda: streams_after_evaluation(report, device))  # fmt: skip
        report.run("3. RNG restore with fewer devices",
                   lambda: rng_restore_with_fewer_devices(report, device))  # fmt: skip
        report.run("4. trainer.precision=16-mixed",
                   lambda: fp16_mixed(report, folder, sizes, accelerator, tmp))  # fmt: skip
        report.run("5. trainer.precision=auto", lambda: precision_auto(report, device))
        report.run("6. DCGAN throughput", lambda: throughput(report, sizes, device, results))
        report.run("7. data loader vs GPU",
                   lambda: loader_rate(report, folder, sizes, accelerator, tmp, results))  # fmt: skip
        report.run("8. bf16 quality check", lambda: quality(report, sizes, device, args.dry_run))
    print(f"\n{report.passed} checks passed, {len(report.failed)} failed"
          + (f" ({', '.join(report.failed)})" if report.failed else "")
          + f"; {time.perf_counter() - started:.0f} s")  # fmt: skip
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
