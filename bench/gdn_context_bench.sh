#!/usr/bin/env bash
# Decode speed against context length: an all-attention model and a 3:1 gated
# delta-net : attention hybrid of the same shape (toy init --layer-pattern
# gdn,gdn,gdn,attn), tg at depths 128 and 4096 (toy bench -d: the test starts from a
# context of that many tokens). A GDN layer reads a fixed-size state per token, an
# attention layer every cached key and value, so the hybrid's decode should stay
# nearly flat where the attention model's falls.
#
#   bench/gdn_context_bench.sh [BUILD_DIR] [WORK_DIR]
#
# Environment: THREADS (2), REPS (3), TG (32), DEPTHS ("128 4096"), TYPE (q8_0).
set -euo pipefail
BUILD_DIR=${1:-build}
WORK_DIR=${2:-${TMPDIR:-/tmp}/toy-gdn-bench}
THREADS=${THREADS:-2} REPS=${REPS:-3} TG=${TG:-32} TYPE=${TYPE:-q8_0}
DEPTHS=${DEPTHS:-128 4096}
TOY="$BUILD_DIR/toy"
mkdir -p "$WORK_DIR"
# SmolLM2-135M's width (576, 9 heads of 64, 3 KV heads, FFN 1536, 49152 vocabulary,
# tied), 16 layers so the pattern of 4 repeats.
shape=(--arch llama --n-embd 576 --n-layer 16 --n-head 9 --n-head-kv 3 --n-ff 1536 --vocab 49152
  --tied --ctx 8192 --rope-base 100000 --seed 1)
make_model() {  # NAME [PATTERN]
  local out="$WORK_DIR/$1-$TYPE.gguf"
  if [[ ! -s "$out" ]]; then
    local extra=()
    [[ $# -gt 1 ]] && extra=(--layer-pattern "$2")
    "$TOY" init "${shape[@]}" "${extra[@]}" -o "$WORK_DIR/$1-f32.gguf" >&2
    "$TOY" quantize "$WORK_DIR/$1-f32.gguf" "$out" "$TYPE" >/dev/null
    rm -f "$WORK_DIR/$1-f32.gguf"
  fi
  echo "$out"
}
attn=$(make_model attention)
hybrid=$(make_model hybrid-3gdn-1attn gdn,gdn,gdn,attn)
field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1"; }
params() { "$TOY" info "$1" --json | python3 -c 'import json,sys; print(sum(__import__("math").prod(t["shape"]) for t in json.load(sys.stdin)["tensors"]))' 2>/dev/null || echo "?"; }
echo "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $THREADS threads, $TYPE weights, F16 KV cache, backend $("$TOY" version | sed -n 's/^backend: //p')"
echo
echo "| model | parameters | context (-d) | tg$TG t/s |"
echo "|---|---|---|---|"
for m in "$attn" "$hybrid"; do
  for d in $DEPTHS; do
    out=$("$TOY" bench -m "$m" -p 0 -n "$TG" -d "$d" -t "$THREADS" -r "$REPS" --json)
    printf '| %s | %s | %s | %.1f |\n' "$(basename "$m" .gguf)" "$(params "$m")" "$d" "$(field "$out" tg_tps)"
  done
done
