#!/usr/bin/env bash
# Mixed-precision training on the shakespeare-char preset (nanoGPT's configuration,
# ../shared/bench/REFERENCE.md): the same run with --compute-type f32, bf16 and f16,
# each its final validation loss (over the whole held-out split) and its tokens/s,
# and each 16-bit type's validation loss relative to f32's.
#
#   bench/mixed_precision.sh [TOY_BUILD_DIR]     # default: ./build
#
# Environment: STEPS [2000] THREADS [2] TYPES ["f32 bf16 f16"] SEED [1337]
#   DATA [../shared/fixtures/text/tinyshakespeare.txt]
# Prints the backend toy chose (toy version) and the CPU. Runs one after the other;
# on a shared machine only the losses compare across runs, not the tokens/s.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
build="$(cd "${1:-$repo/build}" && pwd)"
toy="$build/toy"
[[ -x "$toy" ]] || { echo "mixed_precision.sh: no toy binary at $toy" >&2; exit 1; }
steps="${STEPS:-2000}"
threads="${THREADS:-2}"
types="${TYPES:-f32 bf16 f16}"
data="${DATA:-$repo/../shared/fixtures/text/tinyshakespeare.txt}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p')"
"$toy" version | sed -n '1,3p'
printf '%-6s %10s %10s %12s\n' type val_loss vs_f32 tokens/s
f32_loss=""
for type in $types; do
  line="$("$toy" train --preset shakespeare-char --data "$data" -o "$work/$type.gguf" \
    --steps "$steps" --compute-type "$type" -t "$threads" --seed "${SEED:-1337}" -q)"
  val="$(sed -n 's/.*val_loss \([0-9.]*\).*/\1/p' <<<"$line")"
  tps="$(sed -n 's/.*tokens_per_s \([0-9]*\).*/\1/p' <<<"$line")"
  [[ "$type" == f32 ]] && f32_loss="$val"
  rel="-"
  [[ -n "$f32_loss" && "$type" != f32 ]] &&
    rel="$(awk -v a="$val" -v b="$f32_loss" 'BEGIN { printf "%+.2f%%", 100 * (a - b) / b }')"
  printf '%-6s %10s %10s %12s\n' "$type" "$val" "$rel" "$tps"
done
