#!/usr/bin/env bash
# End-to-end tokenization throughput of `toy tokenize --file` on tinyshakespeare.txt
# with the gpt-2 and llama-spm fixture vocabularies (one thread).
# MB/s = file size / (time on the file - time on an empty file), so the cost of
# loading the vocabulary is left out, as in llama.cpp's figures (REFERENCE.md:
# 1.28 MB/s gpt-2, 1.13 MB/s llama-spm). Best of N runs.
#
#   bench/tokenize.sh [BUILD_DIR] [RUNS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
runs="${2:-5}"
fixtures="${TOY_FIXTURES:-$here/../../shared/fixtures}"
toy="$build/toy"
text="$fixtures/text/tinyshakespeare.txt"
empty="$(mktemp)"
trap 'rm -f "$empty"' EXIT

best_seconds() {  # best wall time of $runs runs of: toy tokenize -m $1 --file $2
  local best=""
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s.%N)
    "$toy" tokenize -m "$1" --file "$2" >/dev/null
    t1=$(date +%s.%N)
    best=$(echo "$t0 $t1 $best" | awk '{d=$2-$1; if ($3=="" || d<$3) print d; else print $3}')
  done
  echo "$best"
}

bytes=$(stat -c %s "$text")
printf "%-12s %10s %10s %8s\n" vocabulary tokens seconds MB/s
for vocab in gpt-2 llama-spm; do
  model="$fixtures/tokenizer/ggml-vocab-$vocab.gguf"
  tokens=$("$toy" tokenize -m "$model" --file "$text" | wc -w)
  t_file=$(best_seconds "$model" "$text")
  t_load=$(best_seconds "$model" "$empty")
  echo "$vocab $tokens $t_file $t_load $bytes" |
    awk '{s=$3-$4; printf "%-12s %10d %10.3f %8.2f\n", $1, $2, s, $5/1e6/s}'
done
