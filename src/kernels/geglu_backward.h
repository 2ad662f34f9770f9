// GeGLU gate for training (Gemma's FFN): h = gelu(g) · u with the tanh
// approximation gelu(x) = ½x(1 + tanh(k(x + a·x³))), k = √(2/π), a = 0.044715
// (Hendrycks & Gimpel, "Gaussian Error Linear Units", 2016; Shazeer, "GLU
// Variants Improve Transformer", 2020). Backward, with t = tanh(k(x + a·x³)):
//   gelu'(x) = ½(1 + t) + ½x(1 − t²)·k(1 + 3a·x²)
//   du += dh·gelu(g),  dg += dh·u·gelu'(g).
// The float forward is gated_activation(…, GeluTanh) in kernels/activations.h.
#pragma once

#include <cstdint>

namespace toy {

// h, g, u: n elements each (scalar reference of gated_activation(…, GeluTanh)).
template <typename Real>
void geglu_reference(Real* h, const Real* g, const Real* u, int64_t n);

// dg, du (n) += gradients for dh (n); g, u are the forward's inputs.
template <typename Real>
void geglu_backward(Real* dg, Real* du, const Real* dh, const Real* g, const Real* u, int64_t n);

}  // namespace toy
