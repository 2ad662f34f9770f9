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

inline std::vector<const cpu::Backend*> runnable_backends() {
  return cpu::runnable_backends(cpu::host_features());
}

// For INSTANTIATE_TEST_SUITE_P(..., ::testing::ValuesIn(runnable_backends()), backend_name).
inline std::string backend_name(const ::testing::TestParamInfo<const cpu::Backend*>& info) {
  return info.param->name;
}

}  // namespace toy::testing_support
