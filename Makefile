# gan-lightning: `make help` lists the targets.
# By default everything runs in the project's own virtual environment (.venv). To use the
# active environment instead (conda, an existing venv): `make <target> VENV=` .
VENV ?= .venv
ifeq ($(strip $(VENV)),)
PYTHON := python
STAMP := .installed-active-env
else
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
endif
ARGS ?=
PYTEST_ARGS ?=
CKPT ?=

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast test-slurm lint format clean clean-all eval generate bench

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
ifneq ($(strip $(VENV)),)
	test -x $(PYTHON) || python3 -m venv $(VENV)
endif
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Install the package + dev tools (torch/torchvision from PyPI as a matched pair)

train: install ## Train the default experiment (MLP GAN on MNIST); extra overrides: ARGS="model.d_steps=2"
	$(PYTHON) train.py $(ARGS)

eval: install ## Score a checkpoint or a checkpoints/ dir (FID/KID/IS): CKPT=path [ARGS="metrics.num_samples=10000"]
	@test -n "$(CKPT)" || { echo "usage: make eval CKPT=logs/train/runs/<date>/checkpoints [ARGS=...]"; exit 2; }
	$(PYTHON) -m gan_lightning.evaluate ckpt=$(CKPT) $(ARGS)

generate: install ## Sample images from a checkpoint: CKPT=path [ARGS="n=64 out=samples.png format=folder interpolate=true"]
	@test -n "$(CKPT)" || { echo "usage: make generate CKPT=logs/train/runs/<date>/checkpoints/last.ckpt [ARGS=...]"; exit 2; }
	$(PYTHON) -m gan_lightning.generate ckpt=$(CKPT) $(ARGS)

test: install ## Run the whole test suite (unit + real-MNIST integration), CPU only; Slurm: test-slurm
	$(PYTHON) -m pytest -q -m "not slurm" $(PYTEST_ARGS)

test-fast: install ## Run the quick tests only (no real-data integration runs)
	$(PYTHON) -m pytest -q -m "not slow and not slurm" $(PYTEST_ARGS)

# Starts a throwaway Slurm cluster on 127.0.0.1 (scripts/slurm_local.sh) for the session and
# stops it again; needs root and `apt-get install slurmctld slurmd slurm-client munge`.
test-slurm: install ## Run the Slurm tests (sweep, DDP, 2 nodes, requeue) on a local Slurm cluster (root)
	$(PYTHON) -m pytest -q -m slurm tests/slurm $(PYTEST_ARGS)

bench: install ## Benchmark the project against plain PyTorch -> BENCHMARKS.md/.json (~15 min; ARGS=--quick: < 1 min, to logs/bench/)
	$(PYTHON) -m benchmarks.bench $(ARGS)
	$(if $(findstring --quick,$(ARGS)),,$(PYTHON) -m benchmarks.checkpoints --write)

lint: install ## Ruff lint + format check
	$(PYTHON) -m ruff check gan_lightning benchmarks tests train.py
	$(PYTHON) -m ruff format --check gan_lightning benchmarks tests train.py

format: install ## Ruff autofix + format
	$(PYTHON) -m ruff check --fix gan_lightning benchmarks tests train.py
	$(PYTHON) -m ruff format gan_lightning benchmarks tests train.py

clean: ## Remove run outputs and caches (keeps .venv and the data cache)
	rm -rf logs outputs multirun wandb .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

clean-all: clean ## Also remove .venv and the data cache in ./data
	rm -rf $(VENV) data .installed-active-env
