#!/usr/bin/env bash
# Data-parallel training with MPI (issues 14, 15) on one machine: the same `toy train` run as
#   - 1 process x 2 threads (thread replicas, gradients summed in memory),
#   - mpirun -np 2, 1 thread each, gradients summed after the backward (--no-overlap) and
#     layer by layer during it (the default),
#   - the same two with --shard-optimizer (ZeRO-1),
# printing tokens/s, the fraction of the training time the steps waited for collectives and
# each rank's peak RSS. Then the peak RSS per rank with and without ZeRO-1 for the layers of
# SmolLM2-135M (576 x 30 layers, 9/3 heads, n_ff 1536) over a byte vocabulary: 106M
# parameters, 4 steps and a checkpoint (which rank 0 writes gathering the sharded moments).
# Then, for the scaling estimate in the README, the compute time of one step of the
# SmolLM2-135M shape (tied, its 49152-token vocabulary) in 1 process.
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
[[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
# Open MPI refuses root without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)

lscpu | grep -E '^(Model name|CPU\(s\))' | sed 's/^/# /'
SHAPE=(--n-embd 256 --n-layer 4 --n-head 8 --n-ff 768 --ctx 128 --batch 8 --steps "$STEPS"
       --lr 1e-3 --data "$DATA" --eval-batches 1 --val-fraction 0.01)

# Every process runs under /usr/bin/time, which writes its peak RSS (kB) to $TMP/rss.RANK.
TIME=(env "RSS_DIR=$TMP" sh -c '/usr/bin/time -f %M -o "$RSS_DIR/rss.${OMPI_COMM_WORLD_RANK:-0}" "$@"' time)
rss() {  # the peak RSS of each rank, in MB: rank 0 / rank 1
  cat "$TMP"/rss.* | awk '{printf "%s%.0f", (NR > 1 ? " / " : ""), $1 / 1024}'
}

run() {  # run LABEL COMMAND...
  local label=$1
  shift
  rm -f "$TMP"/rss.*
  "$@" -o "$TMP/m.gguf" >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
  local tps comm
  tps=$(sed -n 's/.*tokens_per_s \([0-9]*\).*/\1/p' "$TMP/out")
  comm=$(sed -n 's/.*waiting for collectives (\([0-9.]*\) %).*/\1/p' "$TMP/err")
  printf '%-42s %8s tok/s   waiting for communication %4s %% of step time   peak RSS %s MB\n' \
    "$label" "$tps" "${comm:-0}" "$(rss)"
}

echo "# train, ${STEPS} steps of 8 x 128 tokens"
run "1 process x 2 threads" "${TIME[@]}" "$TOY" train "${SHAPE[@]}" -t 2
run "2 ranks x 1 thread, reduce after backward" "${MPIRUN[@]}" "${TIME[@]}" "$TOY" train "${SHAPE[@]}" -t 1 --no-overlap
run "2 ranks x 1 thread, overlapped" "${MPIRUN[@]}" "${TIME[@]}" "$TOY" train "${SHAPE[@]}" -t 1
run "2 ranks, ZeRO-1, reduce after backward" "${MPIRUN[@]}" "${TIME[@]}" "$TOY" train "${SHAPE[@]}" -t 1 --shard-optimizer --no-overlap
run "2 ranks, ZeRO-1, overlapped" "${MPIRUN[@]}" "${TIME[@]}" "$TOY" train "${SHAPE[@]}" -t 1 --shard-optimizer

# Peak RSS per rank: params + grads (4P bytes each) + AdamW moments (8P, or 8P/N with ZeRO-1)
# + activations. --save-every 4 writes a checkpoint at the end (rank 0 gathers the moments of
# one tensor at a time under ZeRO-1).
BIG=(--n-embd 576 --n-layer 30 --n-head 9 --n-head-kv 3 --n-ff 1536 --ctx 32 --batch 2 --steps 4
     --data "$DATA" --eval-batches 1 --val-fraction 0.01 --save-every 4 -t 1)
echo "# SmolLM2-135M's layers, byte vocabulary, 4 steps of 2 x 32 tokens and a checkpoint"
run "1 process x 1 thread" "${TIME[@]}" "$TOY" train "${BIG[@]}"
grep -E '^train: .* params' "$TMP/err" | head -1 || true
run "2 ranks x 1 thread, reduce after backward" "${MPIRUN[@]}" "${TIME[@]}" "$TOY" train "${BIG[@]}" --no-overlap
run "2 ranks x 1 thread, overlapped" "${MPIRUN[@]}" "${TIME[@]}" "$TOY" train "${BIG[@]}"
run "2 ranks x 1 thread, ZeRO-1" "${MPIRUN[@]}" "${TIME[@]}" "$TOY" train "${BIG[@]}" --shard-optimizer

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
