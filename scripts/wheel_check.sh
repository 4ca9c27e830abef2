#!/usr/bin/env bash
# The wheel check (.ci/run, after `make test`): the package a user installs works outside the
# checkout. It
#   1. builds the wheel from a clean copy of the checkout (tracked + untracked, not ignored:
#      no stale build/ and nothing written into the checkout);
#   2. checks it holds every config (gan_lightning/conf/**/*.yaml) and the console scripts;
#   3. installs it with --no-deps into a fresh venv whose only link to the test venv is a .pth
#      line naming the test venv's site-packages: torch & co. are reused (no second 5 GB
#      download or copy), while the test venv's editable gan_lightning (a finder registered by
#      a .pth file *inside* that folder, which a .pth path line never runs) stays out;
#   4. from a temporary folder, runs a 3-batch gan-train, gan-generate on its checkpoint, the
#      other commands' --help, `python -m gan_lightning`, --version, and checks that the
#      gan_lightning imported is the fresh venv's, not the checkout's;
#   5. prints what the fresh venv cost (seconds, disk).
# Usage: scripts/wheel_check.sh [python of the test venv, default .venv/bin/python]
# Data: MNIST from $GAN_LIGHTNING_DATA_DIR (default: the checkout's data/, which `make test`
# filled), else fetched through the usual chain.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=$(realpath -s "${1:-$REPO/.venv/bin/python}")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gan-wheel-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export WANDB_MODE=offline GAN_LIGHTNING_DATA_DIR="${GAN_LIGHTNING_DATA_DIR:-$REPO/data}"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
step() { printf '\n== wheel check: %s\n' "$*"; }
fail() { printf 'wheel check FAILED: %s\n' "$*" >&2; exit 1; }

check_start=$(now_ms)
step "build the wheel from a clean copy of $REPO"
mkdir -p "$WORK/src" "$WORK/dist"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$REPO" ls-files -z --cached --others --exclude-standard \
        | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$WORK/src"
else
    cp -a "$REPO/." "$WORK/src/"
fi
build_start=$(now_ms)
"$PY" -m pip wheel -q --no-deps "$WORK/src" -w "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/gan_lightning-*.whl)
echo "built $(basename "$WHEEL") in $(since "$build_start") s"

step "the wheel holds every config and the console scripts"
"$PY" - "$WHEEL" "$REPO" <<'EOF'
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[2])
from tests.wheel_contents import check_wheel  # the same check as tests/test_packaging.py

for line in check_wheel(Path(sys.argv[1]), Path(sys.argv[2])):
    print(line)
EOF

step "install it into a fresh venv over the test venv's packages"
install_start=$(now_ms)
BASE=$("$PY" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
"$BASE" -m venv --without-pip "$WORK/venv"
VPY="$WORK/venv/bin/python"
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
TEST_SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo "$TEST_SITE" > "$SITE/_gan_lightning_test_venv.pth"
"$PY" -m pip --python "$VPY" install -q --no-deps --no-index "$WHEEL"
install_s=$(since "$install_start")
"$PY" -m pip --python "$VPY" check || fail "the fresh venv lacks a dependency the wheel declares"

step "run the installed commands from a temporary folder"
RUN="$WORK/run"
mkdir -p "$RUN"
cd "$RUN"
export PATH="$WORK/venv/bin:$PATH"
unset PYTHONPATH
where=$("$VPY" -c 'import gan_lightning; print(gan_lightning.__file__)')
[[ "$where" == "$SITE"/gan_lightning/* ]] || fail "gan_lightning imported from $where, not $SITE"
echo "gan_lightning imported from $where"
version=$("$VPY" -c 'import gan_lightning; print(gan_lightning.__version__)')
for cmd in gan-train gan-generate gan-evaluate gan-report gan-train-classifier; do
    [[ "$(command -v "$cmd")" == "$WORK/venv/bin/$cmd" ]] || fail "$cmd is not the fresh venv's"
    out=$("$cmd" --version)
    [[ "$out" == "gan_lightning $version" ]] || fail "$cmd --version printed '$out'"
done
[[ "$("$VPY" -m gan_lightning --version)" == "gan_lightning $version" ]] || fail "python -m --version"
"$VPY" -m gan_lightning | tee "$WORK/listing.txt"
for cmd in gan-train gan-generate gan-evaluate gan-report; do
    grep -q "^  $cmd " "$WORK/listing.txt" || fail "python -m gan_lightning does not list $cmd"
done
gan-evaluate --help >/dev/null
gan-report --help >/dev/null

train_start=$(now_ms)
gan-train trainer.max_steps=3 trainer.max_epochs=1 trainer.limit_val_batches=1 \
    trainer.num_sanity_val_steps=0 trainer.accelerator=cpu trainer.enable_progress_bar=false \
    logger=none metrics=none hydra.run.dir=run
echo "gan-train: $(since "$train_start") s"
[[ -f run/checkpoints/last.ckpt ]] || fail "gan-train wrote no run/checkpoints/last.ckpt"
[[ ! -e "$REPO/run" ]] || fail "gan-train wrote into the checkout"
gan-generate ckpt=run/checkpoints/last.ckpt n=16 out=samples.png device=cpu
[[ -s samples.png ]] || fail "gan-generate wrote no samples.png"

step "what the fresh venv cost"
echo "venv + install: $install_s s; fresh venv on disk: $(du -sh "$WORK/venv" | cut -f1)" \
    "(test venv: $(du -sh "$(dirname "$(dirname "$(dirname "$TEST_SITE")")")" | cut -f1), reused)"
echo "wheel check passed in $(since "$check_start") s"
