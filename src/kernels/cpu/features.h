// The CPU's instruction-set features, read at run time (cpuid + XCR0 on x86-64,
// HWCAP on ARM64), and the choice of backend they allow.
#pragma once

#include <string>
#include <vector>

#include "kernels/cpu/backend.h"

namespace toy::cpu {

struct Features {
  // x86-64
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512vnni = false, avx512bf16 = false;
  // AMX tiles with BF16 / INT8 products (Sapphire Rapids and later), enabled by the OS and
  // granted to this process (arch_prctl ARCH_REQ_XCOMP_PERM); TOY_AMX=0 leaves them unused.
  bool amx_bf16 = false, amx_int8 = false;
  // ARM64
  bool neon = false, dotprod = false, fp16 = false, i8mm = false;

  bool has_avx2() const { return avx2 && fma && f16c; }
  bool has_avx512() const { return has_avx2() && avx512f && avx512bw && avx512dq && avx512vl; }
  bool has_neon() const { return neon && dotprod; }
  // "avx2 fma f16c avx512f ..." : the features above that are present.
  std::string describe() const;
};

// The features of the CPU this process runs on (read once).
const Features& host_features();

// The backends this binary contains that `f` can run, best last
// (generic is always first).
std::vector<const Backend*> runnable_backends(const Features& f);

// The best runnable backend, or the one named by `forced` (the TOY_BACKEND
// variable: generic, avx2, avx512, neon). Throws toy::Error when the name is
// unknown or the CPU lacks the instructions it needs.
const Backend& choose_backend(const Features& f, const char* forced);

// choose_backend(host_features(), getenv("TOY_BACKEND")), decided once per
// process. The table is a constant; callers pass the reference on explicitly.
const Backend& host_backend();

}  // namespace toy::cpu
