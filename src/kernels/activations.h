// Elementwise activations and the softmax / softcap used by the forward pass.
#pragma once

#include <cstdint>

namespace toy {

enum class Activation {
  Silu,      // x · sigmoid(x)                                 (SwiGLU FFN)
  GeluTanh,  // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))     (Gemma's GeGLU FFN)
};

float silu(float x);
float gelu_tanh(float x);

// Gated FFN core: out[i] = act(gate[i]) * up[i] for n values (out may alias gate).
void gated_activation(float* out, const float* gate, const float* up, int64_t n, Activation act);

// x[i] = cap · tanh(x[i] / cap)  (Gemma 2 attention and final logit softcapping).
void softcap(float* x, int64_t n, float cap);

// In-place softmax of one row of n values (max-subtracted; the sum accumulated in double).
void softmax(float* x, int64_t n);

}  // namespace toy
