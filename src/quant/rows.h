// Per-type scalar reference rows, one function per ggml type. quant.h dispatches
// on DType to these; SIMD kernels call them directly as their reference.
//
// n is the number of elements and must be a multiple of the block size
// (32 for Q4_0..Q8_0, 256 for the K-quants); the caller (quant.cpp) checks it.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace toy::quant {

// Dequantization: y[0..n) from n / block_size blocks, bit-exact with ggml.
void dequantize_row_f16(const uint16_t* x, float* y, int64_t n);
void dequantize_row_bf16(const uint16_t* x, float* y, int64_t n);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q2_k(const BlockQ2_K* x, float* y, int64_t n);
void dequantize_row_q3_k(const BlockQ3_K* x, float* y, int64_t n);
void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t n);
void dequantize_row_q8_k(const BlockQ8_K* x, float* y, int64_t n);

// Quantization of x[0..n). The 16-bit and 32-element types follow ggml's
// quantize_row_*_ref exactly (same bits for the same input).
void quantize_row_f16(const float* x, uint16_t* y, int64_t n);
void quantize_row_bf16(const float* x, uint16_t* y, int64_t n);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n);
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n);

// K-quants: a weighted scale (and min) search per sub-block, then the sub-block
// scales are themselves quantized to 6 (Q4_K/Q5_K) or 8 (Q6_K) bits. Without
// `importance` this reproduces ggml's quantize_row_*_ref; with it, the per-element
// error weights are importance[i] * sqrt(sigma^2 + x[i]^2) (llama.cpp's imatrix weighting).
void quantize_row_q2_k(const float* x, BlockQ2_K* y, int64_t n, const float* importance);
void quantize_row_q3_k(const float* x, BlockQ3_K* y, int64_t n, const float* importance);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n, const float* importance);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n, const float* importance);
void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n, const float* importance);

}  // namespace toy::quant
