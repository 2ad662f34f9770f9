// The AVX2 backend's table (AVX2 + FMA + F16C: Haswell and later, AMD Zen).
#include "kernels/cpu/backend.h"

namespace toy::cpu {
namespace avx2 {
#include "kernels/cpu/backend_functions.inc"
bool gemm_blocks(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T, const void* w,
                 size_t w_stride, int64_t n_rows, int64_t n, DType type);
void pack_rows(float* panel, const float* src, int64_t stride, int64_t valid, int64_t width,
               int64_t kc);
}  // namespace avx2

namespace {

const Backend kAvx2 = {
    .name = "avx2",
    .gemm_float = avx2::gemm_float,
    .widen_rows = avx2::widen_rows,
    .round_to_16bit = avx2::round_to_16bit,
    // SmolLM2-shaped F32 prefill on a 2-core AVX2-only EPYC, packed vs tiles (best of 4–6
    // interleaved runs): pp64 0.99x, pp128 0.94x, pp256 1.15x, pp512 1.12x.
    .packed_f32_min_rows = 256,
    .pack_weight_row = avx2::pack_weight_row,
    .pack_activation_row = avx2::pack_activation_row,
    .gemm_int8 = avx2::gemm_int8,
    .gemm_blocks = avx2::gemm_blocks,
    .exp_shifted = avx2::exp_shifted,
    .f16_to_f32_row = avx2::f16_to_f32_row,
    .gemm_micro = avx2::gemm_micro,
    .gemm_micro_bf16 = nullptr,  // no BF16 dot products: rounded F32 panels
    .pack_rows = avx2::pack_rows,
    .pack_rows_bf16 = nullptr,
    .swiglu = avx2::swiglu,
    .swiglu_backward = avx2::swiglu_backward,
};

}  // namespace

const Backend* avx2_backend() {
  return &kAvx2;
}

}  // namespace toy::cpu
