// The AVX-512 backend's table (F/BW/DQ/VL). Its int8 GEMM needs VNNI; a CPU with
// AVX-512 but no VNNI (Skylake-X) gets the AVX2 int8 GEMM (and block products) in its table. The
// BF16 GEMM tile needs AVX512_BF16 (Zen 4, Sapphire Rapids, Cooper Lake); the training GEMM
// runs on AMX tiles where the CPU has AMX-BF16 (Sapphire Rapids and later).
#include <array>

#include "kernels/cpu/backend.h"

namespace toy::cpu {
namespace avx512 {
#include "kernels/cpu/backend_functions.inc"
// AVX-512 only (needs VNNI): decode products on stored Q8_0 / Q4_0 / Q5_0 blocks with
// gemm_int8's arithmetic.
bool gemm_blocks(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T, const void* w,
                 size_t w_stride, int64_t n_rows, int64_t n, DType type);
// AVX-512 only (needs AVX512_BF16).
void gemm_micro_bf16(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                     int64_t m_valid, int64_t n_valid, bool overwrite);
void pack_rows_bf16(uint32_t* pairs, const float* src, int64_t stride, int64_t valid, int64_t width,
                    int64_t kc);
bool dequantize_row(DType type, const void* row, float* y, int64_t n);
// Needs AMX-TILE and AMX-BF16 (and the process's permission to use them).
void gemm_tile_bf16(int64_t kp, const uint32_t* a, int64_t lda, const uint32_t* b, float* c,
                    int64_t ldc, int64_t m_valid, int64_t n_valid, bool overwrite);
void pack_tile_rows(uint32_t* rows, int64_t ld, const float* src, int64_t row_stride,
                    int64_t col_stride, int64_t count, int64_t padded_rows, int64_t kc);
// Needs AMX-TILE and AMX-INT8.
bool pack_tile_int8(uint8_t* panel, const quant::PackedWeightRow* w, int64_t count, int64_t np,
                    const quant::IntDotTraits& traits);
void gemm_tile_int8(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T,
                    const uint8_t* panel, int64_t n_valid, int64_t np,
                    const quant::IntDotTraits& traits);
}  // namespace avx512

namespace {

Backend make(bool vnni, bool bf16, bool amx_bf16, bool amx_int8) {
  return Backend{
      .name = "avx512",
      .gemm_float = avx512::gemm_float,
      .widen_rows = avx512::widen_rows,
      .round_to_16bit = avx512::round_to_16bit,
      .packed_f32_min_rows = 0,  // tiles everywhere (the packed GEMM is not measured faster here)
      .pack_weight_row = avx512::pack_weight_row,
      .pack_activation_row = avx512::pack_activation_row,
      .gemm_int8 = vnni ? avx512::gemm_int8 : avx2_backend()->gemm_int8,
      // The block products must round as gemm_int8 does (a row's output may not depend
      // on how many rows share the call), so they come from the same instruction set.
      .gemm_blocks = vnni ? avx512::gemm_blocks : avx2_backend()->gemm_blocks,
      .pack_tile_int8 = amx_int8 ? avx512::pack_tile_int8 : nullptr,
      .gemm_tile_int8 = amx_int8 ? avx512::gemm_tile_int8 : nullptr,
      .dequantize_row = avx512::dequantize_row,
      .exp_shifted = avx512::exp_shifted,
      .f16_to_f32_row = avx512::f16_to_f32_row,
      .gemm_micro = avx512::gemm_micro,
      .gemm_micro_bf16 = bf16 ? avx512::gemm_micro_bf16 : nullptr,
      // A transposing copy is bound by loads and stores: AVX2's 8 × 8 transpose serves.
      .pack_rows = avx2_backend()->pack_rows,
      .pack_rows_bf16 = bf16 ? avx512::pack_rows_bf16 : nullptr,
      .gemm_tile_bf16 = bf16 && amx_bf16 ? avx512::gemm_tile_bf16 : nullptr,
      .pack_tile_rows = bf16 && amx_bf16 ? avx512::pack_tile_rows : nullptr,
      .swiglu = avx512::swiglu,
      .swiglu_backward = avx512::swiglu_backward,
  };
}

}  // namespace

const Backend* avx512_backend(bool vnni, bool bf16, bool amx_bf16, bool amx_int8) {
  // Every combination, indexed by the four flags as bits.
  static const auto tables = [] {
    std::array<Backend, 16> all{};
    for (int i = 0; i < 16; ++i) all[i] = make(i & 8, i & 4, i & 2, i & 1);
    return all;
  }();
  return &tables[(vnni ? 8 : 0) | (bf16 ? 4 : 0) | (amx_bf16 ? 2 : 0) | (amx_int8 ? 1 : 0)];
}

}  // namespace toy::cpu
