// AVX-512 elementwise loops: exp, F16 widening, SwiGLU backward.
#include <cmath>

#include "kernels/cpu/avx512/simd.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx512 {

void exp_shifted(float* y, const float* x, float shift, int64_t n) {
  const __m512 s = _mm512_set1_ps(shift);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), s)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s)));
  }
}

void f16_to_f32_row(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(
        dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
  }
}

void swiglu(float* h, const float* g, const float* u, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 gi = _mm512_maskz_loadu_ps(m, g + i), ui = _mm512_maskz_loadu_ps(m, u + i);
    const __m512 sigmoid =
        _mm512_div_ps(one, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), gi))));
    _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(_mm512_mul_ps(gi, sigmoid), ui));
  }
}

void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u,
                     int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 gi = _mm512_maskz_loadu_ps(m, g + i), ui = _mm512_maskz_loadu_ps(m, u + i);
    const __m512 dhi = _mm512_maskz_loadu_ps(m, dh + i);
    const __m512 sigmoid =
        _mm512_div_ps(one, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), gi))));
    const __m512 silu = _mm512_mul_ps(gi, sigmoid);
    _mm512_mask_storeu_ps(du + i, m, _mm512_fmadd_ps(dhi, silu, _mm512_maskz_loadu_ps(m, du + i)));
    // σ·(1 + g·(1 − σ)) = σ + silu·(1 − σ)
    const __m512 dsilu = _mm512_fmadd_ps(silu, _mm512_sub_ps(one, sigmoid), sigmoid);
    _mm512_mask_storeu_ps(
        dg + i, m,
        _mm512_fmadd_ps(_mm512_mul_ps(dhi, ui), dsilu, _mm512_maskz_loadu_ps(m, dg + i)));
  }
}

namespace {

// Writes (or adds, unless overwrite) the valid m_valid × n_valid part of a register tile.
void store_tile(const __m512 (&acc)[kGemmMR][2], float* c, int64_t ldc, int64_t m_valid,
                int64_t n_valid, bool overwrite) {
  const __mmask16 m0 = tail_mask(n_valid), m1 = tail_mask(n_valid - 16);
  for (int i = 0; i < m_valid; ++i) {
    float* row = c + i * ldc;
    __m512 lo = acc[i][0], hi = acc[i][1];
    if (!overwrite) {
      lo = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, row), lo);
      hi = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, row + 16), hi);
    }
    _mm512_mask_storeu_ps(row, m0, lo);
    _mm512_mask_storeu_ps(row + 16, m1, hi);
  }
}

}  // namespace

// Register tile kGemmMR × kGemmNR = 8 × 32: 16 zmm accumulators.
void gemm_micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m_valid,
                int64_t n_valid, bool overwrite) {
  constexpr int kMR = static_cast<int>(kGemmMR);
  static_assert(kGemmNR == 32, "two zmm per row");
  __m512 acc[kMR][2];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * kGemmNR);
    const __m512 b1 = _mm512_loadu_ps(b + k * kGemmNR + 16);
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[k * kMR + i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  store_tile(acc, c, ldc, m_valid, n_valid, overwrite);
}

// The same 8 × 32 tile on BF16 pairs: each vdpbf16ps adds two products per lane, so a
// pair of k costs what one k costs in gemm_micro (twice the multiply-adds per cycle).
void gemm_micro_bf16(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                     int64_t m_valid, int64_t n_valid, bool overwrite) {
  constexpr int kMR = static_cast<int>(kGemmMR);
  __m512 acc[kMR][2];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kp; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * kGemmNR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * kGemmNR + 16);
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[p * kMR + i]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
  }
  store_tile(acc, c, ldc, m_valid, n_valid, overwrite);
}

}  // namespace toy::cpu::avx512
