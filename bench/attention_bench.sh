#!/usr/bin/env bash
# Attention kernels against context length: toy bench with -fa on / off / auto at
# depths 128, 1024 and 4096 (the tests start from a context of that many tokens,
# llama-bench's -d), SmolLM2-135M-shaped Q8_0 model with an 8192-token context.
#
#   bench/attention_bench.sh [BUILD_DIR] [WORK_DIR]
#
# Environment: THREADS (2), REPS (2), PP (128), TG (32), DEPTHS ("128 1024 4096").
set -euo pipefail
BUILD_DIR=${1:-build}
WORK_DIR=${2:-${TMPDIR:-/tmp}/toy-attention-bench}
THREADS=${THREADS:-2} REPS=${REPS:-2} PP=${PP:-128} TG=${TG:-32}
DEPTHS=${DEPTHS:-128 1024 4096}
TOY="$BUILD_DIR/toy"
mkdir -p "$WORK_DIR"
base="$WORK_DIR/smollm2-135m-shape-ctx8k-f32.gguf"
model="$WORK_DIR/smollm2-135m-shape-ctx8k-q8_0.gguf"
if [[ ! -s "$model" ]]; then
  "$TOY" init --arch llama --n-embd 576 --n-layer 30 --n-head 9 --n-head-kv 3 --n-ff 1536 \
    --vocab 49152 --tied --ctx 8192 --rope-base 100000 --seed 1 -o "$base" >&2
  "$TOY" quantize "$base" "$model" q8_0 >/dev/null
  rm -f "$base"
fi
field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1"; }
echo "SmolLM2-135M-shaped Q8_0, $THREADS threads, F16 KV cache, backend $("$TOY" version | sed -n 's/^backend: //p')"
echo
echo "| context (-d) | -fa | pp$PP t/s | tg$TG t/s |"
echo "|---|---|---|---|"
for d in $DEPTHS; do
  for fa in off on auto; do
    out=$("$TOY" bench -m "$model" -p "$PP" -n "$TG" -d "$d" -t "$THREADS" -r "$REPS" -fa "$fa" --json)
    printf '| %s | %s | %.1f | %.1f |\n' "$d" "$fa" "$(field "$out" pp_tps)" "$(field "$out" tg_tps)"
  done
done
