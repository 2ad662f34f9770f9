// Scalar references of the quantized dot products, with ggml's semantics: the
// activation row is quantized to Q8_0 / Q8_1 / Q8_K blocks (ggml's vec_dot_type for
// the weight type), each block pair gives an exact integer sum, and the sums are
// scaled in F32 (ggml_vec_dot_*_q8_*_generic). The SIMD matmul is tested against these.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/blocks.h"

namespace toy::quant {

// ggml's block_q8_1: x = d * q; s = d * sum(q), both f16.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36);

// Bytes of the activation blocks for n elements paired with `weight_type`.
int64_t act_row_bytes_ref(DType weight_type, int64_t n);

// Quantizes an activation row the way ggml does for `weight_type` (x86 rounding:
// half to even; Q8_0/Q8_1 scale 127 / amax). Writes act_row_bytes_ref bytes.
void quantize_act_row_ref(DType weight_type, const float* x, void* dst, int64_t n);

// sum_i w[i] * x[i] over a stored weight row and quantized activation blocks.
float vec_dot_ref(DType weight_type, const void* weight_row, const void* act_blocks, int64_t n);

}  // namespace toy::quant
