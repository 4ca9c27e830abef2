"""``make bench``: the project's training throughput against plain PyTorch on the same nets.

One process (``python -m benchmarks.bench``) interleaves and repeats every measurement, so a
machine that slows down for a while (other jobs, thermal limits) hurts all paths alike and the
*ratios* stay meaningful; see BENCHMARKS.md ("How the benchmark measures") for what each path
includes. Modules:

* :mod:`benchmarks.cases`: the benchmarked configurations, composed from the project's own
  Hydra configs, and the in-memory MNIST tensors the DataModule serves;
* :mod:`benchmarks.plain`: the reference, a plain PyTorch loop over the same net classes;
* :mod:`benchmarks.project`: the project's path (``gan_lightning.train.run``) with a timing
  callback;
* :mod:`benchmarks.flops`: FLOPs per step (``torch.utils.flop_counter``) and the machine's
  measured matmul / conv peaks;
* :mod:`benchmarks.startup`: time from ``python train.py`` to the first optimizer step;
* :mod:`benchmarks.default_run`: the default run (``python train.py``) with per-epoch
  throughput and the share of periodic evaluation;
* :mod:`benchmarks.report`: BENCHMARKS.md section and JSON;
* :mod:`benchmarks.bench`: the command line.
"""
