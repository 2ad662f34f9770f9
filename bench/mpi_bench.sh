#!/usr/bin/env bash
# Data-parallel training with MPI (issue 14) on one machine: the same `toy train` run as
#   - 1 process x 2 threads (thread replicas, gradients summed in memory),
#   - mpirun -np 2, 1 thread each (gradients summed with MPI),
#   - mpirun -np 2 --shard-optimizer (ZeRO-1),
# printing tokens/s and the fraction of the training time spent in collectives. Then, for
# the scaling estimate in the README, the compute time of one step of the SmolLM2-135M shape
# (576 x 30 layers, 9/3 heads, n_ff 1536, tied, its 49152-token vocabulary) in 1 process.
#
#   bench/mpi_bench.sh [BUILD_DIR] [STEPS]
#
# Model of the comparison: llama, n_embd 256, 4 layers, 8 heads, n_ff 768, byte vocabulary,
# ctx 128, global batch 8 (1024 tokens per step), STEPS steps (default 40). The machine is
# shared and noisy: compare runs made the same minute.
set -euo pipefail

BUILD_DIR=${1:-build}
STEPS=${2:-40}
TOY="$BUILD_DIR/toy"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA=${DATA:-$ROOT/../shared/fixtures/text/tinyshakespeare.txt}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

[[ -x "$TOY" ]] || { echo "error: $TOY not found; build the toy target first" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "error: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
# Open MPI refuses root without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)

lscpu | grep -E '^(Model name|CPU\(s\))' | sed 's/^/# /'
SHAPE=(--n-embd 256 --n-layer 4 --n-head 8 --n-ff 768 --ctx 128 --batch 8 --steps "$STEPS"
       --lr 1e-3 --data "$DATA" --eval-batches 1 --val-fraction 0.01)

run() {  # run LABEL COMMAND...
  local label=$1
  shift
  "$@" -o "$TMP/m.gguf" >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
  local tps comm
  tps=$(sed -n 's/.*tokens_per_s \([0-9]*\).*/\1/p' "$TMP/out")
  comm=$(sed -n 's/.*in collectives (\([0-9.]*\) %).*/\1/p' "$TMP/err")
  printf '%-34s %8s tok/s   communication %s %% of step time\n' "$label" "$tps" "${comm:-0}"
}

echo "# train, ${STEPS} steps of 8 x 128 tokens"
run "1 process x 2 threads" "$TOY" train "${SHAPE[@]}" -t 2
run "2 ranks x 1 thread" "${MPIRUN[@]}" "$TOY" train "${SHAPE[@]}" -t 1
run "2 ranks x 1 thread, ZeRO-1" "${MPIRUN[@]}" "$TOY" train "${SHAPE[@]}" -t 1 --shard-optimizer

# The 135M shape: seconds per step of 4 x 256 tokens in one process on every core.
SMOL=${TOY_SMOLLM2:-$("$ROOT/scripts/fetch-smollm2.sh" 2>/dev/null || true)}
if [[ -s "$SMOL" ]]; then
  echo "# SmolLM2-135M shape, 3 steps of 4 x 256 tokens, 1 process x $(nproc) threads"
  "$TOY" train --vocab-from "$SMOL" --n-embd 576 --n-layer 30 --n-head 9 --n-head-kv 3 \
    --n-ff 1536 --tied --ctx 256 --batch 4 --steps 3 --data "$DATA" --eval-batches 1 \
    --val-fraction 0.01 -o "$TMP/s.gguf" >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
  grep -E '^train: .* params' "$TMP/err" | head -1
  tps=$(sed -n 's/.*tokens_per_s \([0-9]*\).*/\1/p' "$TMP/out")
  echo "135M shape: $tps tok/s = $(python3 -c "print(f'{1024/$tps:.2f}')") s per step of 1024 tokens"
else
  echo "# SmolLM2 not found (scripts/fetch-smollm2.sh): 135M measurement skipped"
fi
