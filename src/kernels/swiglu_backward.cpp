#include "kernels/swiglu_backward.h"

#include <cmath>
#include <type_traits>

#include "kernels/vexp.h"

namespace toy {

template <typename Real>
void swiglu_reference(Real* h, const Real* g, const Real* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = g[i] / (Real(1) + std::exp(-g[i])) * u[i];
}

template <typename Real>
void swiglu_backward(Real* dg, Real* du, const Real* dh, const Real* g, const Real* u, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<Real, float>) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
      const __m512 gi = _mm512_loadu_ps(g + i), ui = _mm512_loadu_ps(u + i);
      const __m512 dhi = _mm512_loadu_ps(dh + i);
      const __m512 sigmoid =
          _mm512_div_ps(one, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), gi))));
      const __m512 silu = _mm512_mul_ps(gi, sigmoid);
      _mm512_storeu_ps(du + i, _mm512_fmadd_ps(dhi, silu, _mm512_loadu_ps(du + i)));
      // σ·(1 + g·(1 − σ)) = σ + silu·(1 − σ)
      const __m512 dsilu = _mm512_fmadd_ps(silu, _mm512_sub_ps(one, sigmoid), sigmoid);
      _mm512_storeu_ps(dg + i,
                       _mm512_fmadd_ps(_mm512_mul_ps(dhi, ui), dsilu, _mm512_loadu_ps(dg + i)));
    }
  }
#endif
  // Tail of the vector loop, and every element without AVX-512F.
  for (; i < n; ++i) {
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
