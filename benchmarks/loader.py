"""The training loader's images/s for CelebA-like files, streamed (decoded in workers every
epoch) and from the decoded cache (``data.cache=true``), on a generated miniature CelebA tree.

    python -m benchmarks.loader [--images 512] [--image-size 64] [--epochs 3] [--workers 2]

Images are 178x218 JPEGs in CelebA's layout (tests/data/miniature.py), all in the training
split, cropped to 178x178 and resized to ``image_size`` as ``data=celeba`` does. Each path is timed over ``epochs`` whole
epochs of its training loader, after one warm-up batch (workers started, the cache's pages
read once), batches left on the CPU (no model, no device): what the data side can feed. The
cache's one-off build is timed on its own.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def time_epochs(datamodule: Any, epochs: int) -> dict[str, float]:
    """Images/s of ``epochs`` epochs of ``datamodule``'s training loader (after one batch)."""
    loader = datamodule.train_dataloader()
    next(iter(loader))  # workers started (persistent), first pages read
    images = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch, _ in loader:
            images += batch.shape[0]
    seconds = time.perf_counter() - start
    return {"images_per_s": images / seconds, "images": images, "seconds": seconds}


def measure_loader(
    images: int = 512,
    image_size: int = 64,
    epochs: int = 3,
    workers: int = 2,
    batch_size: int = 128,
    directory: str | Path | None = None,
) -> dict[str, Any]:
    """``{"streamed": {...}, "cached": {...}, "build_seconds", "ratio", ...}`` on a fresh
    miniature CelebA tree of ``images`` files (in ``directory``, else a temporary folder)."""
    from gan_lightning.data.celeba import CelebADataModule
    from tests.data.miniature import make_celeba_tree

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(directory or tmp)
        root = make_celeba_tree(data_dir, n=images, attributes=False)
        # Every image in the train split, so an epoch is all `images` of them.
        names = [
            line.split()[0]
            for line in (root / "list_eval_partition.txt").read_text().split("\n")
            if line
        ]
        (root / "list_eval_partition.txt").write_text("".join(f"{n} 0\n" for n in names))
        common = {
            "data_dir": str(data_dir),
            "image_size": image_size,
            "batch_size": min(batch_size, images),
            "seed": 0,
        }
        streamed = CelebADataModule(num_workers=workers, persistent_workers=True, **common)
        streamed.prepare_data()
        streamed.setup("fit")
        result: dict[str, Any] = {"streamed": time_epochs(streamed, epochs)}
        cached = CelebADataModule(cache=True, num_workers=workers, **common)
        start = time.perf_counter()
        cached.prepare_data()  # decodes all `images` files once (all three splits)
        result["build_seconds"] = time.perf_counter() - start
        result["cached"] = time_epochs(cached, epochs)
    result["ratio"] = result["cached"]["images_per_s"] / result["streamed"]["images_per_s"]
    result.update(
        images=images,
        train_images=len(cached.train_set),
        image_size=image_size,
        epochs=epochs,
        workers=workers,
        cpu=cpu_name(),
        date=time.strftime("%Y-%m-%d"),
    )
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="streamed path's num_workers")
    args = parser.parse_args(argv)
    result = measure_loader(args.images, args.image_size, args.epochs, args.workers)
    print(json.dumps(result, indent=2))
    print(
        f"streamed ({args.workers} workers): {result['streamed']['images_per_s']:.0f} images/s; "
        f"cached: {result['cached']['images_per_s']:.0f} images/s; ratio {result['ratio']:.1f}x "
        f"(cache built in {result['build_seconds']:.1f} s) on {result['cpu']}"
    )
    return result


if __name__ == "__main__":
    main()
