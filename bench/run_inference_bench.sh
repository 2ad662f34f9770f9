#!/usr/bin/env bash
# End-to-end inference benchmark, toy side by side with llama.cpp on the same GGUF
# files in the same run (llama.cpp built natively on this machine by
# ../shared/bench/llama-ref.sh; about 10 minutes the first time).
#
#   bench/run_inference_bench.sh [BUILD_DIR] [WORK_DIR]
#
# Builds the SmolLM2-135M-shaped random model with `toy init` (llama, n_embd 576,
# 30 layers, 9 heads, 3 KV heads, n_ff 1536, vocab 49152, tied, rope base 100000),
# converts it with `toy quantize` to F16, Q8_0 and Q4_K_M, then for each file runs
# `toy bench` (pp512, tg128, median of REPS after a warm-up, F16 KV cache) once per
# backend in BACKENDS and llama.cpp's bench, and prints a markdown table.
# Environment: THREADS (2), REPS (3), PP (512), TG (128), TYPES ("f32 f16 q8_0 q4_k_m"),
# BACKENDS (the backends `toy version` lists, generic excluded), LLAMA_REF (the
# llama-ref.sh script; set it to "none" to skip llama.cpp).
set -euo pipefail

BUILD_DIR=${1:-build}
WORK_DIR=${2:-${TMPDIR:-/tmp}/toy-inference-bench}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
PP=${PP:-512}
TG=${TG:-128}
TYPES=${TYPES:-f32 f16 q8_0 q4_k_m}
TOY="$BUILD_DIR/toy"
here=$(cd "$(dirname "$0")" && pwd)
LLAMA_REF=${LLAMA_REF:-$here/../../shared/bench/llama-ref.sh}

if [[ ! -x "$TOY" ]]; then
  echo "error: $TOY not found; build first (cmake --build $BUILD_DIR --target toy)" >&2
  exit 1
fi
if [[ -z "${BACKENDS:-}" ]]; then
  BACKENDS=$("$TOY" version | sed -n 's/^backends available: //p' | tr ' ' '\n' | grep -v generic |
    tr '\n' ' ')
fi
mkdir -p "$WORK_DIR"
BASE="$WORK_DIR/smollm2-135m-shape-f32.gguf"
if [[ ! -s "$BASE" ]]; then
  "$TOY" init --arch llama --n-embd 576 --n-layer 30 --n-head 9 --n-head-kv 3 --n-ff 1536 \
    --vocab 49152 --tied --ctx 2048 --rope-base 100000 --seed 1 -o "$BASE" >&2
fi

# A field of the one-line JSON object `toy bench --json` prints.
json_field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1" | tr -d '"'; }

rows=()
for type in $TYPES; do
  model="$WORK_DIR/smollm2-135m-shape-$type.gguf"
  [[ "$type" == f32 ]] && model="$BASE"
  if [[ ! -s "$model" ]]; then
    echo "toy quantize -> $type" >&2
    "$TOY" quantize "$BASE" "$model" "$type" -t "$THREADS" >/dev/null
  fi
  ref_pp="-" ref_tg="-"
  if [[ "$LLAMA_REF" != none ]]; then
    echo "llama.cpp bench: $model" >&2
    ref=$("$LLAMA_REF" bench "$model" "$PP" "$TG" "$THREADS" "$REPS" f16 | tail -1)
    ref_pp=$(awk '{print $2}' <<<"$ref")
    ref_tg=$(awk '{print $4}' <<<"$ref")
  fi
  for backend in $BACKENDS; do
    echo "toy bench ($backend): $model" >&2
    out=$(TOY_BACKEND=$backend "$TOY" bench -m "$model" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" \
      --json)
    rows+=("$(awk -v t="${type^^}" -v b="$backend" -v pp="$(json_field "$out" pp_tps)" \
      -v tg="$(json_field "$out" tg_tps)" -v rpp="$ref_pp" -v rtg="$ref_tg" \
      -v rss="$(json_field "$out" peak_rss_mb)" 'BEGIN {
        rp = (rpp == "-") ? "-" : sprintf("%.2fx", pp / rpp)
        rt = (rtg == "-") ? "-" : sprintf("%.2fx", tg / rtg)
        printf "| %s | %s | %.0f | %s | %s | %.1f | %s | %s | %.0f |", t, b, pp, rpp, rp, tg, rtg, rt, rss
      }')")
  done
done

echo
echo "SmolLM2-135M-shaped model, $THREADS threads, pp$PP / tg$TG, median of $REPS, F16 KV cache;"
echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo
echo "| weights | toy backend | toy pp$PP t/s | llama.cpp | ratio | toy tg$TG t/s | llama.cpp | ratio | toy peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
