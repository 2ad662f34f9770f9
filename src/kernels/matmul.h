// The weight matmul behind every `linear()`: y = x · Wᵀ with W used in place, in
// its stored type (F32, F16, BF16 or any block-quantized type).
#pragma once

#include <cstdint>
#include <functional>

#include "core/tensor.h"
#include "kernels/compute.h"
#include "kernels/linear_backward.h"

namespace toy {

enum class MatmulMode {
  // Dequantize weight blocks and accumulate in F32: the arithmetic of the
  // `.exact` references and of training.
  Exact,
  // Round activations the way llama.cpp does (Q8_0 / Q8_K blocks for quantized
  // weights, F16 for F16 weights) and use integer / SIMD dot products.
  Fast,
  // Exact arithmetic for the training forward (many rows): F32 weights go through the
  // packed, blocked GEMM of training (kernels/linear_backward.h), which its backward also
  // runs; other types (a frozen base under LoRA) are dequantized in blocks of rows into
  // the same GEMM.
  Train,
  // Train with mixed precision (--compute-type bf16): the same products with both
  // inputs rounded to BF16 and F32 sums (kernels/linear_backward.h GemmInputs::BF16).
  TrainBf16,
  // Train with F16 inputs (--compute-type f16): F16's 11-bit mantissa and narrow range
  // (|x| <= 65504; a larger gradient becomes inf, which the loss scaling of train/trainer.h
  // detects and backs off from).
  TrainF16,
};

inline bool is_training_mode(MatmulMode mode) {
  return mode == MatmulMode::Train || mode == MatmulMode::TrainBf16 || mode == MatmulMode::TrainF16;
}

// The training GEMM's input rounding of a training mode.
inline GemmInputs gemm_inputs(MatmulMode mode) {
  return mode == MatmulMode::TrainBf16  ? GemmInputs::BF16
         : mode == MatmulMode::TrainF16 ? GemmInputs::F16
                                        : GemmInputs::F32;
}

// y: (T, n_out) row-major floats; x: (T, n_in) row-major floats;
// w: ne = [n_in, n_out], contiguous rows, any dequantizable type.
// Overwrites y. Rows of W are split across the pool's threads (and T when W has
// few rows). Working buffers are per-thread and reused, so after the first call
// with a given shape the decode loop does not allocate.
void matmul(float* y, const float* x, const Tensor& w, int64_t T, const Compute& cx,
            MatmulMode mode = MatmulMode::Exact);

// Calls fn(block, row0, rows) for consecutive blocks of at most max_rows rows of w, each
// dequantized to F32 into block (rows, n_in) by the pool's threads (the buffer is reused
// and belongs to the calling thread): a frozen quantized weight's products in training.
void for_each_dequantized_block(
    const Tensor& w, int64_t max_rows, const Compute& cx,
    const std::function<void(const float* block, int64_t row0, int64_t rows)>& fn);

// The scalar reference: dequantize each row of W and accumulate in double.
// Single-threaded; for tests only.
void matmul_reference(float* y, const float* x, const Tensor& w, int64_t T);

// The scalar reference of MatmulMode::Fast, with ggml's arithmetic: activations
// rounded to F16 / BF16 for 16-bit weights, quantized to Q8_0 / Q8_1 / Q8_K blocks
// for block-quantized weights and dotted with exact integer block sums
// (quant/dot_ref.h). Single-threaded; for tests only.
void matmul_fast_reference(float* y, const float* x, const Tensor& w, int64_t T);

}  // namespace toy
