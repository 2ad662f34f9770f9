#!/usr/bin/env bash
# The main job, end to end on a fresh machine: build toy, train a small llama
# from scratch on a text every Debian machine has (the licenses in
# /usr/share/common-licenses), save it as GGUF, show what was written, and
# generate text from it. About three minutes on 2 cores (most of it the build).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh

mkdir -p out
corpus=out/demo-corpus.txt
cat /usr/share/common-licenses/{GPL-3,LGPL-3,GPL-2,LGPL-2.1,Apache-2.0,MPL-2.0,MPL-1.1,Artistic,GFDL-1.3,BSD} \
  >"$corpus" 2>/dev/null || cat /usr/share/common-licenses/* >"$corpus"
echo "demo: corpus $corpus ($(wc -c <"$corpus") bytes)" >&2

# A character-level llama (4 layers, 128 wide, RoPE, SwiGLU, AdamW), as in nanoGPT's shakespeare-char.
./build/toy train --data "$corpus" --vocab chars -o out/demo.gguf \
  --n-embd 128 --n-layer 4 --n-head 4 --n-ff 384 --ctx 128 --batch 12 \
  --steps "${DEMO_STEPS:-800}" --lr 2e-3 --warmup 50 --eval-every 250

./build/toy info out/demo.gguf
echo
echo "demo: sampling 400 characters from out/demo.gguf:" >&2
./build/toy generate -m out/demo.gguf -p "This License" -n 400 --temp 0.7 --seed 1
echo
