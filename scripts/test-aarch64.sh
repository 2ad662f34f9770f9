#!/usr/bin/env bash
# The ARM64 build and tests, without ARM hardware: cross-compiles toy with Debian's
# g++-aarch64-linux-gnu (cmake/aarch64-linux-gnu.cmake) into build-aarch64/ and
# runs the test binaries under qemu-user (qemu's default CPU "max" has dotprod,
# fp16 and i8mm, so both the generic and the NEON backend run).
#
# What runs (2 to 4.5 minutes of tests under qemu on 2 shared cores; a clean
# build first takes about 8 minutes there):
#  - kernels_tests: every kernel, each backend entry of generic and neon against
#    the references (the backend suites iterate over the runnable backends);
#  - quant_tests, core_tests, gguf_tests, model_tests, tokenizer_tests: whole;
#  - infer_tests (model fixtures: logits, greedy, decode, KV cache types) and
#    train_tests (gradients against finite differences and PyTorch): whole, once
#    with TOY_TEST_BACKEND=neon and once with generic;
#  - the ISA isolation check on the arm64 `toy` and `toy version` under qemu.
# Left out: cli_tests (they spawn the `toy` binary, which would need binfmt_misc)
# and the sanitizer / fuzz runs (x86 only in scripts/test.sh).
#
# Installs what it needs with apt-get, like scripts/install-deps.sh (idempotent):
# the cross compiler, qemu-user, and the arm64 multiarch packages of PCRE2 and
# GoogleTest (dpkg --add-architecture arm64).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
./scripts/install-deps.sh

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "test-aarch64: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
apt_install() {
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

packages=(g++-aarch64-linux-gnu qemu-user libpcre2-dev:arm64 libgtest-dev:arm64)
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "test-aarch64: adding the arm64 architecture to dpkg (multiarch)" >&2
    $sudo dpkg --add-architecture arm64
  fi
  echo "test-aarch64: installing ${missing[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  apt_install "${missing[@]}"
fi

echo "== aarch64 build (cross, Release)"
# Without toy serve: Debian has no arm64 package of cpp-httplib to link against here; without
# MPI: the host's Open MPI is x86-64 (and the tests under qemu run one process).
cmake -S . -B build-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=Release -DTOY_TESTS=ON -DTOY_BENCH=OFF -DTOY_SERVER=OFF -DTOY_MPI=OFF \
  -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST >/dev/null
suites=(kernels quant core gguf model tokenizer infer train)
cmake --build build-aarch64 -j"$jobs" --target toy "${suites[@]/%/_tests}"

# As the toolchain file's emulator: the cross sysroot's loader with its own libc.
run() {
  qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib "$@"
}

echo "== aarch64: ISA isolation and backend choice"
./scripts/check-isa-isolation.sh build-aarch64/toy
version=$(run build-aarch64/toy version)
echo "$version" | grep -E '^(cpu features|backend)'
echo "$version" | grep -qx 'backend: neon' || { echo "test-aarch64: expected the neon backend" >&2; exit 1; }
TOY_BACKEND=generic run build-aarch64/toy version | grep -qx 'backend: generic'

# Each binary runs as one process (gtest_discover_tests' one process per test
# costs a qemu start-up each); working directory and fixtures as under ctest.
failed=()
suite() {  # suite NAME [ENV=VALUE...]
  local name=$1
  shift
  echo "== aarch64: ${name}_tests $*"
  local start=$SECONDS
  if (for assignment in "$@"; do export "${assignment?}"; done
    run "build-aarch64/tests/${name}_tests" --gtest_brief=1); then
    echo "   ($((SECONDS - start)) s)"
  else
    failed+=("${name}_tests $*")
  fi
}
for s in kernels quant core gguf model tokenizer; do suite "$s"; done
for backend in neon generic; do
  suite infer TOY_TEST_BACKEND=$backend
  suite train TOY_TEST_BACKEND=$backend
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "test-aarch64: FAILED under qemu:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "== aarch64 tests passed"
