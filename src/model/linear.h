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

// A 2-D view of matrix e of a 3-D stack (expert weights): ne = [ne0, ne1].
Tensor matrix_slice(const Tensor& stack, int64_t e);

}  // namespace toy
