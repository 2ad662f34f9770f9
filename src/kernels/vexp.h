// exp over float vectors with AVX-512 (used by the training kernels' softmax,
// SiLU and cross-entropy, where scalar expf was a tenth of a training step).
// exp(x) = 2^n · e^r with n = round(x/ln 2), r = x − n·ln 2 (|r| <= ln2/2), e^r by
// its degree-6 Taylor polynomial (relative error < 2e-7 before rounding), and
// 2^n applied exactly with vscalefps. Inputs below −87.3 give 0 (or a denormal),
// above 88.7 give +inf, like expf.
// Without AVX-512F (-DTOY_NATIVE=OFF or an older CPU) exp_ps does not exist and
// exp_shifted falls back to std::exp per element, the reference the vector
// version approximates.
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>

namespace toy {

#if defined(__AVX512F__)
inline __m512 exp_ps(__m512 x) {
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693359375f);
  const __m512 ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.8f));
  const __m512 n =
      _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
  r = _mm512_fnmadd_ps(n, ln2_lo, r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// y[i] = exp(x[i] − shift) for n values (y may alias x).
inline void exp_shifted(float* y, const float* x, float shift, int64_t n) {
  const __m512 s = _mm512_set1_ps(shift);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), s)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s)));
  }
}
#else
// y[i] = exp(x[i] − shift) for n values (y may alias x).
inline void exp_shifted(float* y, const float* x, float shift, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - shift);
}
#endif

// The double-precision versions are plain std::exp (gradient checks).
inline void exp_shifted(double* y, const double* x, double shift, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - shift);
}

}  // namespace toy
