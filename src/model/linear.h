// linear(): the one entry point for every weight matmul of the forward pass.
// Quantized / 16-bit weights are used in place through toy::matmul; LoRA
// adapters attach here (y += scale·(alpha/r)·B·(A·x) after the base product,
// model/lora.h), found from the weight itself, so no caller changes for them.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/compute.h"
#include "kernels/matmul.h"

namespace toy {

class LoraSet;

struct LinearContext {
  Compute compute;  // the pool and the CPU backend
  MatmulMode mode = MatmulMode::Exact;
  // Adapters added to the products with the weights they name; null: none. The adapter
  // terms are computed in F32 whatever `mode` is (they are thin: rank r << n_in).
  const LoraSet* lora = nullptr;
};

// y: (T, n_out) = x: (T, n_in) · Wᵀ (+ bias: (n_out) when bias.data is set);
// w: ne = [n_in, n_out] in any dequantizable type.
void linear(float* y, const float* x, const Tensor& w, const Tensor& bias, int64_t T,
            const LinearContext& ctx);
void linear(float* y, const float* x, const Tensor& w, int64_t T, const LinearContext& ctx);

// Training (model/linear_train.cpp). linear() in double precision for the
// gradient checks: w and bias are F64, the product is the scalar reference.
void linear(double* y, const double* x, const Tensor& w, const Tensor& bias, int64_t T,
            const LinearContext& ctx);
void linear(double* y, const double* x, const Tensor& w, int64_t T, const LinearContext& ctx);

// The backward of linear(): dy (T, n_out) is the gradient of y, x (T, n_in) the
// forward's input. Accumulates dx (T, n_in) += dy·W (skipped when dx is null),
// dw (ne of w) += dyᵀ·x and dbias (n_out) += Σ_t dy (each skipped when its data is
// null, e.g. a frozen weight). dw, dbias: F32 (F64 for the double overload); w: F32 /
// F64, or for float any stored type when dw is null (a frozen quantized base: its rows
// are dequantized in blocks for dx). The adapter terms of w in ctx.lora add their part
// of dx and accumulate dA, dB into their grad_a / grad_b (kernels/lora.h).
void linear_backward(float* dx, const Tensor& dw, const Tensor& dbias, const float* dy,
                     const float* x, const Tensor& w, int64_t T, const LinearContext& ctx);
void linear_backward(double* dx, const Tensor& dw, const Tensor& dbias, const double* dy,
                     const double* x, const Tensor& w, int64_t T, const LinearContext& ctx);

// A 2-D view of matrix e of a 3-D stack (expert weights): ne = [ne0, ne1].
Tensor matrix_slice(const Tensor& stack, int64_t e);

}  // namespace toy
