#!/usr/bin/env bash
# Checks that a baseline build of toy keeps its wide-vector code inside the ISA
# backends: every function of the binary that touches a ymm/zmm register must be
# one of src/kernels/cpu/<isa>/ (its name contains the ISA's namespace). A shared
# inline function or template compiled in an ISA file and picked by the linker
# for baseline callers would show up here as an illegal instruction waiting for
# an older CPU.
set -euo pipefail
binary=${1:?usage: check-isa-isolation.sh BINARY}
objdump -d --no-show-raw-insn -C "$binary" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
  /%[yz]mm[0-9]/ {
    if (fn !~ /toy::cpu::avx2::|toy::cpu::avx512::/ && !(fn in seen)) {
      seen[fn] = 1; bad++; print "wide-vector code outside the ISA backends: " fn
    }
  }
  END {
    if (bad) exit 1
    print "ok: ymm/zmm only in toy::cpu::avx2 / toy::cpu::avx512"
  }'
