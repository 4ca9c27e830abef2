#!/usr/bin/env bash
# The GPU check (issue 17): one command on a machine with a CUDA GPU, under 8 minutes, no
# network. Prints a report: device and versions, the CUDA-only checks of random streams,
# RNG restore, 16-mixed and precision=auto, DCGAN 64x64 throughput in 32-true / bf16-mixed,
# the data loader against the GPU, the bf16 quality check, then the benchmark on the device
# when benchmarks/bench.py offers --device. Exit code: 1 when a check failed.
#
#   scripts/gpu_check.sh              # on the GPU machine, from the repository root
#   scripts/gpu_check.sh --dry-run    # the same parts on CPU at tiny sizes (what CI runs)
#
# PYTHON=... picks the interpreter (default: .venv/bin/python, else python3); the machine
# needs the project's dependencies installed already (the check itself fetches nothing).
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export WANDB_MODE=offline HYDRA_FULL_ERROR=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

timeout 420 "$PYTHON" scripts/gpu_check.py "$@"
status=$?
[[ $status -eq 124 ]] && echo "gpu_check.py ran past 420 s and was stopped"

echo
echo "== 9. benchmark on the device"
if [[ " $* " == *" --dry-run "* ]]; then
    echo "   dry run: the benchmark is skipped (make bench runs it on CPU)"
elif "$PYTHON" -m benchmarks.bench --help 2>/dev/null | grep -q -- "--device"; then
    # make bench without its install step (no network here); --quick keeps it in the budget.
    timeout 150 "$PYTHON" -m benchmarks.bench --device cuda --quick --out logs/gpu_check/bench \
        || echo "   benchmark failed or ran past 150 s (exit $?)"
else
    echo "   benchmarks/bench.py has no --device option yet: skipped"
fi
exit $status
