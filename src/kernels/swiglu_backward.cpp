#include "kernels/swiglu_backward.h"

#include <cmath>

namespace toy {

template <typename Real>
void swiglu_reference(Real* h, const Real* g, const Real* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = g[i] / (Real(1) + std::exp(-g[i])) * u[i];
}

template <typename Real>
void swiglu_backward(Real* dg, Real* du, const Real* dh, const Real* g, const Real* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const Real sigmoid = Real(1) / (Real(1) + std::exp(-g[i]));
    const Real silu = g[i] * sigmoid;
    du[i] += dh[i] * silu;
    dg[i] += dh[i] * u[i] * sigmoid * (Real(1) + g[i] * (Real(1) - sigmoid));
  }
}

template void swiglu_reference<float>(float*, const float*, const float*, int64_t);
template void swiglu_reference<double>(double*, const double*, const double*, int64_t);
template void swiglu_backward<float>(float*, float*, const float*, const float*, const float*,
                                     int64_t);
template void swiglu_backward<double>(double*, double*, const double*, const double*, const double*,
                                      int64_t);

}  // namespace toy
