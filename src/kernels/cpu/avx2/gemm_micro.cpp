// AVX2 micro-kernel of the training GEMM (kernels/linear_backward.cpp): the kGemmMR ×
// kGemmNR = 8 × 32 tile of C from a k-major A panel (a[k*8 + i]) and B panel (b[k*32 + j]).
// AVX2 has 16 ymm registers, too few for the whole tile's 32 accumulators, so it is
// computed in passes that each keep their accumulators in registers over the k loop: rows
// 0..5 × columns 0..15 and 16..31 (12 accumulators, 2 loads of B and 6 broadcasts of A per
// 12 FMAs: enough independent sums to cover the FMA latency), then rows 6..7 × all 32
// columns (8 accumulators).
#include "kernels/cpu/avx2/simd.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx2 {
namespace {

constexpr int kMR = static_cast<int>(kGemmMR), kNR = static_cast<int>(kGemmNR);

// Rows [r0, r0 + R) × columns [c0, c0 + 8V) of the tile; rows past m_valid and columns
// past n_valid are computed (the panels are zero there) but not stored.
template <int R, int V>
inline void pass(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int r0, int c0,
                 int64_t m_valid, int64_t n_valid, bool overwrite) {
  __m256 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[i][v] = _mm256_setzero_ps();
  const float* ak = a + r0;
  const float* bk = b + c0;
  for (int64_t k = 0; k < kc; ++k, ak += kMR, bk += kNR) {
    __m256 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = _mm256_loadu_ps(bk + 8 * v);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m256 ai = _mm256_broadcast_ss(ak + i);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  // Constant bounds with the row test inside, so the accumulators are indexed by constants
  // only and stay in registers (a runtime bound makes GCC keep them in memory).
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    if (r0 + i >= m_valid) break;
    float* row = c + (r0 + i) * ldc + c0;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const int64_t left = n_valid - c0 - 8 * v;
      if (left >= 8) {
        // Plain loads and stores where the 8 columns are whole: AMD's masked stores are
        // microcoded and cost as much as the products of a short k loop.
        const __m256 sum =
            overwrite ? acc[i][v] : _mm256_add_ps(_mm256_loadu_ps(row + 8 * v), acc[i][v]);
        _mm256_storeu_ps(row + 8 * v, sum);
      } else if (left > 0) {
        const __m256i m = tail_mask(left);
        const __m256 sum =
            overwrite ? acc[i][v] : _mm256_add_ps(_mm256_maskload_ps(row + 8 * v, m), acc[i][v]);
        _mm256_maskstore_ps(row + 8 * v, m, sum);
      }
    }
  }
}

}  // namespace

void gemm_micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m_valid,
                int64_t n_valid, bool overwrite) {
  // The tile's rows of C are read (or written) only after the k loop: ask for them now, so
  // their cache misses overlap the products.
  for (int64_t i = 0; i < m_valid; ++i)
    for (int64_t j = 0; j < n_valid; j += 16)
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + j), _MM_HINT_T0);
  pass<6, 2>(kc, a, b, c, ldc, 0, 0, m_valid, n_valid, overwrite);
  if (n_valid > 16) pass<6, 2>(kc, a, b, c, ldc, 0, 16, m_valid, n_valid, overwrite);
  if (m_valid > 6) pass<2, 4>(kc, a, b, c, ldc, 6, 0, m_valid, n_valid, overwrite);
}

}  // namespace toy::cpu::avx2
