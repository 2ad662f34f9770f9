// Weight types: scalar reference dequantization and quantization of rows, bit-compatible
// with ggml's block layouts (ggml-common.h / ggml-quants.c). These are the
// references every SIMD kernel is tested against.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace toy::quant {

// True for the types dequantize_row handles: F32, F16, BF16, Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
bool can_dequantize(DType type);
// True for the types quantize_row produces: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q4_K, Q5_K, Q6_K, Q8_K (and any others implemented).
bool can_quantize(DType type);

// dst[0..n) = the values of the n elements stored at src. n must be a multiple of
// the block size. Bit-exact with ggml's dequantize_row_*.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

// Quantizes n floats into row_bytes(type, n) bytes at dst. `importance`
// (optional, n weights) steers the K-quant scale search like llama.cpp's imatrix.
void quantize_row(DType type, const float* src, void* dst, int64_t n,
                  const float* importance = nullptr);

}  // namespace toy::quant
