#include "kernels/geglu_backward.h"

#include <cmath>

namespace toy {
namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
constexpr double kCoef = 0.044715;

}  // namespace

template <typename Real>
void geglu_reference(Real* h, const Real* g, const Real* u, int64_t n) {
  const Real k = Real(kSqrt2OverPi), a = Real(kCoef);
  for (int64_t i = 0; i < n; ++i) {
    const Real x = g[i];
    h[i] = Real(0.5) * x * (Real(1) + std::tanh(k * x * (Real(1) + a * x * x))) * u[i];
  }
}

template <typename Real>
void geglu_backward(Real* dg, Real* du, const Real* dh, const Real* g, const Real* u, int64_t n) {
  const Real k = Real(kSqrt2OverPi), a = Real(kCoef);
  for (int64_t i = 0; i < n; ++i) {
    const Real x = g[i];
    const Real t = std::tanh(k * x * (Real(1) + a * x * x));
    const Real gelu = Real(0.5) * x * (Real(1) + t);
    const Real dgelu = Real(0.5) * (Real(1) + t) +
                       Real(0.5) * x * (Real(1) - t * t) * k * (Real(1) + 3 * a * x * x);
    du[i] += dh[i] * gelu;
    dg[i] += dh[i] * u[i] * dgelu;
  }
}

template void geglu_reference<float>(float*, const float*, const float*, int64_t);
template void geglu_reference<double>(double*, const double*, const double*, int64_t);
template void geglu_backward<float>(float*, float*, const float*, const float*, const float*,
                                    int64_t);
template void geglu_backward<double>(double*, double*, const double*, const double*, const double*,
                                     int64_t);

}  // namespace toy
