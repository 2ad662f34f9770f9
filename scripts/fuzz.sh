#!/usr/bin/env bash
# Fuzzes the GGUF reader with libFuzzer for SECONDS (default 60): builds the fuzz
# target with clang in build-fuzz/ (or $TOY_FUZZ_BUILD_DIR), seeds it with every
# fixture .gguf plus small generated files (copied at run time, never into the
# repository), and fails if the fuzzer finds a crash, a leak or a slow input.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${TOY_FUZZ_BUILD_DIR:-build-fuzz}
fixtures=${TOY_FIXTURES:-../shared/fixtures}

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DTOY_FUZZ=ON -DTOY_TESTS=OFF -DTOY_BENCH=OFF >/dev/null
cmake --build "$build" -j"${TOY_JOBS:-$(nproc)}" --target gguf_reader_fuzz gguf_fuzz_seeds

seeds="$build/fuzz-seeds"      # rebuilt every run
corpus="$build/fuzz-corpus"    # what the fuzzer learned; kept between runs
artifacts="$build/fuzz-artifacts"
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus" "$artifacts"
if [ -d "$fixtures" ]; then
  find "$fixtures" -name '*.gguf' -exec cp {} "$seeds/" \;
fi
"$build/fuzz/gguf_fuzz_seeds" "$seeds"

log="$build/fuzz.log"
status=0
# -max_len 1 MB: the fixtures (up to 7 MB) are cut to their first megabyte, which holds all of
# their metadata; mutating multi-megabyte inputs would make every run slow.
"$build/fuzz/gguf_reader_fuzz" "$corpus" "$seeds" -max_total_time="$seconds" -max_len=1048576 \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
  >"$log" 2>&1 || status=$?
grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "fuzz: the GGUF reader fuzzer failed (exit $status); see $log and $artifacts" >&2
  tail -n 60 "$log" >&2
  exit 1
fi
echo "fuzz: ok (${seconds}s, log: $log)"
