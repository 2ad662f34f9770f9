// Float GEMM micro-kernels behind matmul(): y = x · Wᵀ with W rows stored as F32, F16
// or BF16 and converted to F32 in registers (AVX-512), F32 accumulation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace toy {

enum class FloatWeight { F32, F16, BF16 };

// y[t * ldy + o] = sum_k x[t * ldx + k] * W[o][k] for t < T, o < n_rows, where
// row o of W starts at w + o * w_stride bytes and holds K elements of `type`.
// x: (T, ldx) floats; y: (T, ldy) floats. Register tiles of 4 activation rows ×
// 6 weight rows; the caller hands in weight blocks small enough for L2.
void gemm_float(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t T, const void* w,
                size_t w_stride, FloatWeight type, int64_t n_rows, int64_t K);

// dst (rows, K) = the rows of W (stride w_stride bytes) widened to F32.
void widen_rows(float* dst, const void* w, size_t w_stride, FloatWeight type, int64_t rows,
                int64_t K);

// dst[i] = x[i] rounded to the nearest F16 (or BF16) value, ties to even, kept as F32:
// what ggml does to activations before an F16 / BF16 dot product. type != F32.
void round_to_16bit(float* dst, const float* x, int64_t n, FloatWeight type);

}  // namespace toy
