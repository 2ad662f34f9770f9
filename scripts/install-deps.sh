#!/usr/bin/env bash
# Installs everything toy's build, tests and fuzzer need, from Debian 12's packages only.
# Starts from a bare Debian 12 with git; safe to run again (apt skips what is present).
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build pkg-config
  clang libclang-rt-14-dev clang-format        # libFuzzer target, sanitizer runtimes, style check
  libgtest-dev libgmock-dev libbenchmark-dev   # tests and micro-benchmarks
  nlohmann-json3-dev                           # fixture references (JSON) and --json output
  libcli11-dev                                 # command-line parsing
  libpcre2-dev                                 # Unicode-aware pre-tokenizer regexes
  libcpp-httplib-dev                           # toy serve's HTTP layer
  libopenmpi-dev openmpi-bin                   # data-parallel training (mpirun) and its tests
  python3-venv                                 # toy serve's tests: the openai client (PyPI)
  chromium                                     # toy serve's chat page, tested headless
  librsvg2-bin libxml2-utils                   # toy plot's SVGs: rendered and parsed in tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
