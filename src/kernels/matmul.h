// The weight matmul behind every `linear()`: y = x · Wᵀ with W used in place, in
// its stored type (F32, F16, BF16 or any block-quantized type).
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace toy {

enum class MatmulMode {
  // Dequantize weight blocks and accumulate in F32: the arithmetic of the
  // `.exact` references and of training.
  Exact,
  // Round activations the way llama.cpp does (Q8_0 / Q8_K blocks for quantized
  // weights, F16 for F16 weights) and use integer / SIMD dot products.
  Fast,
};

// y: (T, n_out) row-major floats; x: (T, n_in) row-major floats;
// w: ne = [n_in, n_out], contiguous rows, any dequantizable type.
// Overwrites y. Rows of W are split across the pool's threads.
void matmul(float* y, const float* x, const Tensor& w, int64_t T, ThreadPool& pool,
            MatmulMode mode = MatmulMode::Exact);

// The scalar reference: dequantize each row of W and accumulate in double.
// Single-threaded; for tests only.
void matmul_reference(float* y, const float* x, const Tensor& w, int64_t T);

}  // namespace toy
