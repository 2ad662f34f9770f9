#include "kernels/rmsnorm_backward.h"

#include <cmath>

namespace toy {
namespace {

template <typename Real>
Real inverse_rms(const Real* x, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return Real(1.0 / std::sqrt(sum / double(n) + double(eps)));
}

}  // namespace

template <typename Real>
void rmsnorm_reference(Real* out, const Real* x, const Real* w, int64_t rows, int64_t n,
                       float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const Real* xr = x + r * n;
    const Real scale = inverse_rms(xr, n, eps);
    Real* yr = out + r * n;
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * scale * w[i];
  }
}

template <typename Real>
void rmsnorm_backward(Real* dx, Real* dw, const Real* dout, const Real* x, const Real* w,
                      int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const Real* xr = x + r * n;
    const Real* dyr = dout + r * n;
    const Real scale = inverse_rms(xr, n, eps);
    Real dot = 0;  // mean over the row of (w·dy)·x̂
    for (int64_t i = 0; i < n; ++i) dot += w[i] * dyr[i] * xr[i];
    dot *= scale / Real(n);
    Real* dxr = dx + r * n;
    for (int64_t i = 0; i < n; ++i) {
      const Real x_hat = xr[i] * scale;
      dxr[i] += scale * (w[i] * dyr[i] - x_hat * dot);
      if (dw) dw[i] += dyr[i] * x_hat;
    }
  }
}

template void rmsnorm_reference<float>(float*, const float*, const float*, int64_t, int64_t, float);
template void rmsnorm_reference<double>(double*, const double*, const double*, int64_t, int64_t,
                                        float);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*,
                                      int64_t, int64_t, float);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*,
                                       const double*, int64_t, int64_t, float);

}  // namespace toy
