#include "kernels/softcap_backward.h"

#include <cmath>

namespace toy {

template <typename Real>
void softcap_reference(Real* x, int64_t n, double cap) {
  const Real c = Real(cap);
  for (int64_t i = 0; i < n; ++i) x[i] = c * std::tanh(x[i] / c);
}

template <typename Real>
void softcap_backward(Real* d, const Real* y, int64_t n, double cap) {
  const Real inv = Real(1.0 / cap);
  for (int64_t i = 0; i < n; ++i) {
    const Real t = y[i] * inv;
    d[i] *= Real(1) - t * t;
  }
}

template void softcap_reference<float>(float*, int64_t, double);
template void softcap_reference<double>(double*, int64_t, double);
template void softcap_backward<float>(float*, const float*, int64_t, double);
template void softcap_backward<double>(double*, const double*, int64_t, double);

}  // namespace toy
