// SwiGLU gate for training: h = silu(g) · u (Shazeer, "GLU Variants Improve
// Transformer", 2020). Backward: du += dh·silu(g), dg += dh·u·σ(g)·(1 + g·(1−σ(g))).
#pragma once

#include <cstdint>

namespace toy {

// h, g, u: n elements each (scalar reference of gated_activation(…, Silu), any float type).
template <typename Real>
void swiglu_reference(Real* h, const Real* g, const Real* u, int64_t n);

template <typename Real>
void swiglu_backward(Real* dg, Real* du, const Real* dh, const Real* g, const Real* u, int64_t n);

}  // namespace toy
