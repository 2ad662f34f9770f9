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
# Runs PyTorch (bench/pytorch_train_bench.py, same configuration) and toy on every
# backend in the same run and prints tokens/s and the ratios (target: >= 5x PyTorch).
# The machine is shared and noisy: compare runs made the same day.
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

# PyTorch on the same data, configuration and threads, in the same run (Debian's
# python3-torch; skipped with a note when it is not installed).
ref=""
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  ref=$(/usr/bin/python3 "$ROOT/bench/pytorch_train_bench.py" "$DATA" "$STEPS" "$THREADS")
  echo "$ref"
else
  echo "note: PyTorch not installed (apt-get install python3-torch libopenblas0-pthread); no ratio" >&2
fi
ref_tps=$(sed -n 's/^pytorch: \([0-9.]*\) tokens.*/\1/p' <<<"$ref")

# Every backend in BACKENDS (default: those `toy version` lists). Evaluate only at
# the end, so the periodic validation does not dilute the timing.
BACKENDS=${BACKENDS:-$("$TOY" version | sed -n 's/^backends available: //p')}
for backend in $BACKENDS; do
  final=$(TOY_BACKEND=$backend "$TOY" train -o "$OUT" --data "$DATA" --preset shakespeare-char \
    --steps "$STEPS" --eval-every 0 -t "$THREADS" -q | grep '^final:')
  tokens_per_s=$(sed -n 's/.*tokens_per_s \([0-9.]*\).*/\1/p' <<<"$final")
  awk -v b="$backend" -v t="$tokens_per_s" -v r="${ref_tps:-0}" -v threads="$THREADS" 'BEGIN {
    printf "toy (%s): %.0f tokens/s on %d threads", b, t, threads
    if (r > 0) printf " = %.2fx PyTorch", t / r
    printf "\n" }'
done
