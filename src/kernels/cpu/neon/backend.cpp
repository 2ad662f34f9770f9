// The NEON backend's table (ARMv8.2-A with the dotprod extension: Cortex-A55/A76
// and later, Neoverse N1/V1/N2, Apple M1 and later, Graviton 2+, Ampere Altra).
#include "kernels/cpu/backend.h"

namespace toy::cpu {
namespace neon {
#include "kernels/cpu/backend_functions.inc"
}  // namespace neon

namespace {

const Backend kNeon = {
    "neon",
    neon::gemm_float,
    neon::widen_rows,
    neon::round_to_16bit,
    neon::pack_weight_row,
    neon::pack_activation_row,
    neon::gemm_int8,
    neon::exp_shifted,
    neon::f16_to_f32_row,
    neon::gemm_micro,
    neon::swiglu_backward,
};

}  // namespace

const Backend* neon_backend() {
  return &kNeon;
}

}  // namespace toy::cpu
