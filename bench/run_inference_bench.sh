#!/usr/bin/env bash
# End-to-end inference benchmark against llama.cpp's figures (../shared/bench/REFERENCE.md).
#
#   bench/run_inference_bench.sh [BUILD_DIR] [WORK_DIR]
#
# Builds the SmolLM2-135M-shaped random model with `toy init` (llama, n_embd 576,
# 30 layers, 9 heads, 3 KV heads, n_ff 1536, vocab 49152, tied, rope base 100000),
# converts it with `toy quantize` to F16, Q8_0 and Q4_K_M, runs `toy bench` (pp512,
# tg128, median of 3 after a warm-up, F16 KV cache) on each and prints a markdown
# table with llama.cpp's numbers and our ratio. Environment: THREADS (2), REPS (3),
# PP (512), TG (128). The machine is shared: compare runs made the same day; the
# "per CPU-s" columns (tokens per process CPU second x threads) show the speed the
# code would have on dedicated cores when other work competes for them.
set -euo pipefail

BUILD_DIR=${1:-build}
WORK_DIR=${2:-${TMPDIR:-/tmp}/toy-inference-bench}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
PP=${PP:-512}
TG=${TG:-128}
TOY="$BUILD_DIR/toy"

if [[ ! -x "$TOY" ]]; then
  echo "error: $TOY not found; build first (cmake --build $BUILD_DIR --target toy)" >&2
  exit 1
fi
mkdir -p "$WORK_DIR"
BASE="$WORK_DIR/smollm2-135m-shape-f32.gguf"
if [[ ! -s "$BASE" ]]; then
  "$TOY" init --arch llama --n-embd 576 --n-layer 30 --n-head 9 --n-head-kv 3 --n-ff 1536 \
    --vocab 49152 --tied --ctx 2048 --rope-base 100000 --seed 1 -o "$BASE" >&2
fi

# toy type | llama.cpp pp512 | llama.cpp tg128 (REFERENCE.md). q4_k_m follows llama.cpp's
# Q4_K_M mix; on this model (n_embd 576, not a multiple of 256) both put most
# tensors in the fallback type Q5_0.
REFERENCE=("f32 445 50.2" "f16 422 95.1" "q8_0 412 98.3" "q4_k_m 386 116.4")

# A field of the one-line JSON object `toy bench --json` prints.
json_field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1" | tr -d '"'; }

rows=()
for entry in "${REFERENCE[@]}"; do
  read -r type ref_pp ref_tg <<<"$entry"
  model="$WORK_DIR/smollm2-135m-shape-$type.gguf"
  if [[ "$type" != f32 && ! -s "$model" ]]; then
    echo "toy quantize -> $type" >&2
    if ! "$TOY" quantize "$BASE" "$model" "$type" -t "$THREADS" >/dev/null; then
      rows+=("| ${type^^} | quantize failed | | | | | | | | | | |")
      continue
    fi
  fi
  [[ "$type" == f32 ]] && model="$BASE"
  echo "toy bench: $model" >&2
  if ! out=$("$TOY" bench -m "$model" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" --json); then
    rows+=("| ${type^^} | bench failed | | | | | | | | | | |")
    continue
  fi
  pp=$(json_field "$out" pp_tps)
  tg=$(json_field "$out" tg_tps)
  rss=$(json_field "$out" peak_rss_mb)
  file_mb=$(json_field "$out" file_mb)
  pp_cpu=$(json_field "$out" pp_tps_cpu)
  tg_cpu=$(json_field "$out" tg_tps_cpu)
  stored=$(json_field "$out" type)
  rows+=("$(awk -v t="${type^^}" -v s="$stored" -v f="$file_mb" -v pp="$pp" -v rpp="$ref_pp" \
    -v tg="$tg" -v rtg="$ref_tg" -v rss="$rss" -v ppc="$pp_cpu" -v tgc="$tg_cpu" 'BEGIN {
      printf "| %s | %s | %.0f | %.1f | %.0f | %.2fx | %.1f | %.1f | %.2fx | %.1f | %.1f | %.0f |",
             t, s, f, pp, rpp, pp / rpp, tg, rtg, tg / rtg, ppc, tgc, rss }')")
done

echo
echo "SmolLM2-135M-shaped model, $THREADS threads, pp$PP / tg$TG, median of $REPS, F16 KV cache"
echo
echo "| weights | stored as | file MiB | toy pp$PP t/s | llama.cpp pp512 | ratio | toy tg$TG t/s | llama.cpp tg128 | ratio | pp per CPU-s | tg per CPU-s | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
