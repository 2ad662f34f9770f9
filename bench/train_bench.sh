#!/usr/bin/env bash
# End-to-end training benchmark against the PyTorch reference (../shared/bench/REFERENCE.md):
# `toy train --preset shakespeare-char` (chars vocabulary of tinyshakespeare.txt, llama,
# n_embd 128, 4 layers, 4 heads, n_ff 384, ctx 64, batch 12, AdamW 1e-3, betas 0.9/0.99,
# wd 0.1, untied) on THREADS threads.
#
#   bench/train_bench.sh [BUILD_DIR] [STEPS]
#
# STEPS defaults to 200 (throughput only, ~15 s); 2000 is the full run whose
# validation loss the issue asks for (PyTorch: val 1.688 after 2000 steps).
# Prints the final line of `toy train` and the ratio to PyTorch's 3,453 tokens/s
# (target: >= 3x, i.e. >= 10,400 tokens/s). The machine is shared and noisy:
# compare runs made the same day, on an otherwise idle machine.
set -euo pipefail

BUILD_DIR=${1:-build}
STEPS=${2:-200}
THREADS=${THREADS:-2}
TOY="$BUILD_DIR/toy"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA=${DATA:-$ROOT/../shared/fixtures/text/tinyshakespeare.txt}
OUT=${OUT:-${TMPDIR:-/tmp}/toy-train-bench.gguf}

if [[ ! -x "$TOY" ]]; then
  echo "error: $TOY not found; build first (cmake --build $BUILD_DIR --target toy)" >&2
  exit 1
fi
if [[ ! -s "$DATA" ]]; then
  echo "error: $DATA not found (set DATA=path/to/tinyshakespeare.txt)" >&2
  exit 1
fi

# Evaluate only at the end, so the periodic validation does not dilute the timing.
final=$("$TOY" train -o "$OUT" --data "$DATA" --preset shakespeare-char --steps "$STEPS" \
  --eval-every 0 -t "$THREADS" -q | grep '^final:')
echo "$final"
tokens_per_s=$(sed -n 's/.*tokens_per_s \([0-9.]*\).*/\1/p' <<<"$final")
awk -v t="$tokens_per_s" -v threads="$THREADS" 'BEGIN {
  printf "toy: %.0f tokens/s on %d threads = %.2fx PyTorch (3,453 tokens/s); target >= 3x\n",
         t, threads, t / 3453.0 }'
