#!/usr/bin/env bash
# Continuous-batching benchmark of `toy serve`: bench/serve_load.py at --parallel 1 and 8
# (the same concurrent streaming clients), on stories260K (the fixture) and
# SmolLM2-135M-Instruct Q4_1 (a real chat model, scripts/fetch-smollm2.sh, from PyPI). Prints a markdown table of p50/p99 latency and aggregate tokens/s.
#
#   bench/serve_bench.sh [BUILD_DIR] [OUT_DIR]
# Environment: CLIENTS (100), REQUESTS (3), MAX_TOKENS (32), PARALLEL ("1 8"), THREADS (2),
# SMOL_CLIENTS (32), SMOL_REQUESTS (2), TOY_VENV (the tests' virtual environment).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BUILD_DIR=${1:-build}
OUT_DIR=${2:-${TMPDIR:-/tmp}/toy-serve-bench}
export TOY_BIN=$(realpath "$BUILD_DIR/toy")
venv=${TOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/toy-venv}
python=python3
[ -x "$venv/bin/python" ] && python="$venv/bin/python"
mkdir -p "$OUT_DIR"

run() {  # label model clients requests ctx
  for p in ${PARALLEL:-1 8}; do
    "$python" "$here/serve_load.py" --model "$2" --clients "$3" --requests "$4" --ctx "$5" \
      --parallel "$p" --max-tokens "${MAX_TOKENS:-32}" --threads "${THREADS:-2}" \
      --out "$OUT_DIR/$1" >"$OUT_DIR/$1-p$p.txt"
    "$python" - "$OUT_DIR/$1/results-p$p.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {r['parallel']} | {r['clients']} x {r['requests'] // r['clients']} "
      f"| {r['completed']}/{r['requests']} | {r['latency_p50_ms']:.0f} | {r['latency_p99_ms']:.0f} "
      f"| {r['ttft_p50_ms']:.0f} | {r['tokens_per_second']:.0f} | {r['rss_before_mib']:.0f} -> "
      f"{r['rss_peak_mib']:.0f} -> {r['rss_after_mib']:.0f} |")
PY
  done
}

echo "| model | P | clients x requests | ok | p50 ms | p99 ms | TTFT p50 ms | tokens/s | RSS MiB (start -> peak -> after) |"
echo "|---|---|---|---|---|---|---|---|---|"
run stories260K "$here/../../shared/fixtures/models/stories260K.gguf" "${CLIENTS:-100}" \
  "${REQUESTS:-3}" 512
smol=$("$here/../scripts/fetch-smollm2.sh" || true)
if [ -n "$smol" ] && [ -f "$smol" ]; then
  run SmolLM2-135M-Q4_1 "$smol" "${SMOL_CLIENTS:-32}" "${SMOL_REQUESTS:-2}" 1024
else
  echo "(SmolLM2-135M-Instruct could not be fetched: scripts/fetch-smollm2.sh)" >&2
fi
