#include "kernels/swiglu_backward.h"

#include <cmath>

namespace toy {

template <typename Real>
void swiglu_reference(Real* h, const Real* g, const Real* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = g[i] / (Real(1) + std::exp(-g[i])) * u[i];
}

template <>
void swiglu_backward<float>(const cpu::Backend& cpu, float* dg, float* du, const float* dh,
                            const float* g, const float* u, int64_t n) {
  cpu.swiglu_backward(dg, du, dh, g, u, n);
}

// Double precision (gradient checks): the formula of cpu/generic.
template <>
void swiglu_backward<double>(const cpu::Backend&, double* dg, double* du, const double* dh,
                             const double* g, const double* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double sigmoid = 1.0 / (1.0 + std::exp(-g[i]));
    const double silu = g[i] * sigmoid;
    du[i] += dh[i] * silu;
    dg[i] += dh[i] * u[i] * sigmoid * (1.0 + g[i] * (1.0 - sigmoid));
  }
}

template void swiglu_reference<float>(float*, const float*, const float*, int64_t);
template void swiglu_reference<double>(double*, const double*, const double*, int64_t);

}  // namespace toy
