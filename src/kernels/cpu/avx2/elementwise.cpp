// AVX2 elementwise loops: exp, F16 widening, SwiGLU and its backward.
#include "kernels/cpu/avx2/simd.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx2 {

void exp_shifted(float* y, const float* x, float shift, int64_t n) {
  const __m256 s = _mm256_set1_ps(shift);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), s)));
  }
}

void f16_to_f32_row(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  if (i < n) {
    alignas(16) uint16_t tmp[8] = {};
    for (int64_t j = i; j < n; ++j) tmp[j - i] = src[j];
    _mm256_maskstore_ps(dst + i, tail_mask(n - i),
                        _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp))));
  }
}

void swiglu(float* h, const float* g, const float* u, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask(n - i);
    const __m256 gi = _mm256_maskload_ps(g + i, m), ui = _mm256_maskload_ps(u + i, m);
    const __m256 sigmoid =
        _mm256_div_ps(one, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), gi))));
    _mm256_maskstore_ps(h + i, m, _mm256_mul_ps(_mm256_mul_ps(gi, sigmoid), ui));
  }
}

void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u,
                     int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask(n - i);
    const __m256 gi = _mm256_maskload_ps(g + i, m), ui = _mm256_maskload_ps(u + i, m);
    const __m256 dhi = _mm256_maskload_ps(dh + i, m);
    const __m256 sigmoid =
        _mm256_div_ps(one, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), gi))));
    const __m256 silu = _mm256_mul_ps(gi, sigmoid);
    _mm256_maskstore_ps(du + i, m, _mm256_fmadd_ps(dhi, silu, _mm256_maskload_ps(du + i, m)));
    // σ·(1 + g·(1 − σ)) = σ + silu·(1 − σ)
    const __m256 dsilu = _mm256_fmadd_ps(silu, _mm256_sub_ps(one, sigmoid), sigmoid);
    _mm256_maskstore_ps(
        dg + i, m, _mm256_fmadd_ps(_mm256_mul_ps(dhi, ui), dsilu, _mm256_maskload_ps(dg + i, m)));
  }
}

}  // namespace toy::cpu::avx2
