// SwiGLU gate for training: h = silu(g) · u (Shazeer, "GLU Variants Improve
// Transformer", 2020). Backward: du += dh·silu(g), dg += dh·u·σ(g)·(1 + g·(1−σ(g))).
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace toy {

// h, g, u: n elements each (scalar reference of gated_activation(…, Silu), any float type).
template <typename Real>
void swiglu_reference(Real* h, const Real* g, const Real* u, int64_t n);

// float runs the backend's vector loop; double is plain scalar code.
template <typename Real>
void swiglu_backward(const cpu::Backend& cpu, Real* dg, Real* du, const Real* dh, const Real* g,
                     const Real* u, int64_t n);
template <>
void swiglu_backward<float>(const cpu::Backend& cpu, float* dg, float* du, const float* dh,
                            const float* g, const float* u, int64_t n);
template <>
void swiglu_backward<double>(const cpu::Backend& cpu, double* dg, double* du, const double* dh,
                             const double* g, const double* u, int64_t n);

}  // namespace toy
