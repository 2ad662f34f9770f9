// The NEON backend's table (ARMv8.2-A with the dotprod extension: Cortex-A55/A76
// and later, Neoverse N1/V1/N2, Apple M1 and later, Graviton 2+, Ampere Altra).
#include "kernels/cpu/backend.h"

namespace toy::cpu {
namespace neon {
#include "kernels/cpu/backend_functions.inc"
}  // namespace neon

namespace {

const Backend kNeon = {
    .name = "neon",
    .gemm_float = neon::gemm_float,
    .widen_rows = neon::widen_rows,
    .round_to_16bit = neon::round_to_16bit,
    .packed_f32_min_rows = 0,  // not measured on ARM hardware
    .pack_weight_row = neon::pack_weight_row,
    .pack_activation_row = neon::pack_activation_row,
    .gemm_int8 = neon::gemm_int8,
    .gemm_blocks = nullptr,  // NEON always packs (no direct-block decode yet)
    .exp_shifted = neon::exp_shifted,
    .f16_to_f32_row = neon::f16_to_f32_row,
    .gemm_micro = neon::gemm_micro,
    .gemm_micro_bf16 = nullptr,  // no BF16 dot products: rounded F32 panels
    .pack_rows = nullptr,        // the portable transposing pack
    .pack_rows_bf16 = nullptr,
    .swiglu = neon::swiglu,
    .swiglu_backward = neon::swiglu_backward,
};

}  // namespace

const Backend* neon_backend() {
  return &kNeon;
}

}  // namespace toy::cpu
