#!/usr/bin/env bash
# Checks that a baseline build of toy keeps the instructions of its optional ISA
# extensions inside the ISA backends: every function of the binary that uses one
# must be one of src/kernels/cpu/<isa>/ (its name contains the ISA's namespace).
# A shared inline function or template compiled in an ISA file and picked by the
# linker for baseline callers would show up here as an illegal instruction
# waiting for an older CPU.
#  x86-64: ymm/zmm/tmm registers (AVX2, AVX-512, AMX) only in toy::cpu::avx2 / avx512.
#  ARM64:  dot products, int8 matrix multiplies and half-precision arithmetic
#          (ARMv8.2 dotprod / fp16, i8mm) only in toy::cpu::neon; plain
#          Advanced SIMD is part of ARMv8-A and may appear anywhere.
set -euo pipefail
binary=${1:?usage: check-isa-isolation.sh BINARY}
if readelf -h "$binary" | grep -q 'Machine:.*AArch64'; then
  objdump=objdump
  command -v aarch64-linux-gnu-objdump >/dev/null && objdump=aarch64-linux-gnu-objdump
  pattern='\t(sdot|udot|usdot|sudot|smmla|ummla|usmmla|bfdot|bfmmla)\t|\t(fadd|fsub|fmul|fdiv|fmla|fmls|fmax|fmin|fabs|fneg|fsqrt|fmadd|fmsub)\t.*(v[0-9]+\.[48]h|[ \t]h[0-9]+(,|$))'
  allowed='toy::cpu::neon::'
else
  objdump=objdump
  pattern='%[yzt]mm[0-9]'
  allowed='toy::cpu::avx2::|toy::cpu::avx512::'
fi
"$objdump" -d --no-show-raw-insn -C "$binary" | awk -v pattern="$pattern" -v allowed="$allowed" '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
  $0 ~ pattern {
    if (fn !~ allowed && !(fn in seen)) {
      seen[fn] = 1; bad++; print "ISA-extension code outside the ISA backends: " fn ": " $0
    }
  }
  END {
    if (bad) exit 1
    print "ok: ISA-extension instructions only in " allowed
  }'
