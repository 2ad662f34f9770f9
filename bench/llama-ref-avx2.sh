#!/usr/bin/env bash
# llama.cpp restricted to AVX2 (+FMA, F16C), built from the same source snapshot as
# ../shared/bench/llama-ref.sh: on an AVX-512 machine this is what llama.cpp runs on
# an AVX2-only CPU, to compare with toy's avx2 backend (TOY_BACKEND=avx2) in the
# same run. Same commands as llama-ref.sh (bench, logits, ppl, ...).
#
#   bench/llama-ref-avx2.sh bench MODEL [pp] [tg] [threads] [reps] [kv]
#
# Builds once into $LLAMA_REF_AVX2_DIR (default /tmp/llama-ref-avx2), ~10 minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ref=$here/../../shared/bench
dir=${LLAMA_REF_AVX2_DIR:-/tmp/llama-ref-avx2}
bin=$dir/llama_ref
if [ ! -x "$bin" ]; then
  mkdir -p "$dir/src"
  tar -xzf "$ref/llama-ref/llama.cpp-src.tar.gz" -C "$dir/src"
  cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
    -DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF >"$dir/configure.log" 2>&1 ||
    { tail -20 "$dir/configure.log" >&2; exit 1; }
  cmake --build "$dir/build" -j"$(nproc)" --target llama >"$dir/build.log" 2>&1 ||
    { tail -20 "$dir/build.log" >&2; exit 1; }
  g++ -O2 -std=c++17 "$ref/llama-ref/llama_ref.cpp" -I"$dir/src/include" -I"$dir/src/ggml/include" \
    -L"$dir/build/bin" -Wl,-rpath,"$dir/build/bin" -lllama -lggml -lggml-base -o "$bin"
  echo "built $bin" >&2
fi
exec "$bin" "$@"
