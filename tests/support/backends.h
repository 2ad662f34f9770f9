// The CPU backends a kernel test runs on: every backend this binary contains that
// the machine can run (an AVX-512 machine runs generic, avx2 and avx512), so a
// developer machine cannot hide a bug of a smaller instruction set.
// Header-only: it needs toy_kernels, which only some test suites link.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/compute.h"
#include "kernels/cpu/features.h"

namespace toy::testing_support {

// Where the CPU has AMX, the avx512 table with tiles (which the engine picks) and the one
// without (what every other AVX-512 CPU runs).
inline std::vector<const cpu::Backend*> runnable_backends() {
  const cpu::Features& f = cpu::host_features();
  std::vector<const cpu::Backend*> backends = cpu::runnable_backends(f);
  if (f.amx_bf16 || f.amx_int8)
    backends.push_back(cpu::avx512_backend(f.avx512vnni, f.avx512bf16, false, false));
  return backends;
}

inline bool uses_amx(const cpu::Backend& backend) {
  return backend.gemm_tile_bf16 || backend.gemm_tile_int8;
}

// For INSTANTIATE_TEST_SUITE_P(..., ::testing::ValuesIn(runnable_backends()), backend_name).
inline std::string backend_name(const ::testing::TestParamInfo<const cpu::Backend*>& info) {
  return std::string(info.param->name) + (uses_amx(*info.param) ? "_amx" : "");
}

}  // namespace toy::testing_support
