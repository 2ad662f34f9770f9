// The training GEMM's transposing pack (kernels/linear_backward.cpp): `width` rows of
// contiguous k gathered into a k-major micro-panel, eight rows by eight k at a time
// through an in-register 8 × 8 transpose. The AVX-512 backend uses this one too: the
// copy is bound by loads and stores, not by vector width.
#include "kernels/cpu/avx2/simd.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx2 {
namespace {

// Rows r[0..8) of 8 floats become columns: afterwards r[j][i] is what r[i][j] was.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

}  // namespace

void pack_rows(float* panel, const float* src, int64_t stride, int64_t valid, int64_t width,
               int64_t kc) {
  const int64_t k8 = kc / 8 * 8;
  for (int64_t i0 = 0; i0 < width; i0 += 8) {
    const float* rows[8];
    for (int64_t r = 0; r < 8; ++r) rows[r] = i0 + r < valid ? src + (i0 + r) * stride : nullptr;
    for (int64_t k = 0; k < k8; k += 8) {
      __m256 v[8];
      for (int r = 0; r < 8; ++r)
        v[r] = rows[r] ? _mm256_loadu_ps(rows[r] + k) : _mm256_setzero_ps();
      transpose8(v);
      for (int r = 0; r < 8; ++r) _mm256_storeu_ps(panel + (k + r) * width + i0, v[r]);
    }
    for (int64_t k = k8; k < kc; ++k)
      for (int64_t r = 0; r < 8; ++r) panel[k * width + i0 + r] = rows[r] ? rows[r][k] : 0.0f;
  }
}

}  // namespace toy::cpu::avx2
