// The integer inference GEMM on AMX-INT8 tiles (cpu/backend.h, gemm_tile_int8): for a block
// of 16 activation rows × 16 weight rows, each run of 32 elements (one weight scale) is one
// tdpbssd of a 16 × 32 A tile (the activation codes, read in place) by a 32 × 16 B tile (the
// weight codes, u − z as signed bytes), whose exact int32 sums are then scaled by
// x.scale · w.scale and added in F32, plus the min terms of types with mins. One tdpbssd
// does 8192 multiply-adds; the scaling (three vector operations per row) is the real cost,
// still several times less than vpdpbusd's, which converts and scales every 4 products.
#include <immintrin.h>

#include "kernels/cpu/avx512/simd.h"
#include "kernels/cpu/avx512/tiles.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx512 {
namespace {

using quant::IntDotTraits;
using quant::PackedActRow;
using quant::PackedWeightRow;

constexpr int64_t kRun = 32;  // elements per tdpbssd (one weight scale)

// The floats of a panel's run (backend.h: kTileInt8RunBytes), after its B tile of 8 rows ×
// 64 bytes (codes of k = 4i..4i+3 for column j at [i][4j]), which the tile loads read.
struct Run {
  const float* scale;   // (16)
  const float* min_lo;  // (16) min coefficient of elements 0-15 of the run
  const float* min_hi;  // (16) of elements 16-31
};

inline Run run_at(const uint8_t* panel, int64_t r) {
  const auto* floats =
      reinterpret_cast<const float*>(panel + r * static_cast<int64_t>(kTileInt8RunBytes) + 512);
  return {floats, floats + 16, floats + 32};
}

// Run r's product on tile set S (C = S, A = 2 + S, B = 4 + S), its int32 sums stored into c.
// GCC's tile intrinsics paste their operands into the assembly text, so the tile numbers
// must be literals: one function per set.
#define TOY_TILE_RUN(NAME, C, A, B)                                                     \
  inline void NAME(int32_t* c, const int8_t* q, int64_t q_stride, const uint8_t* panel, \
                   int64_t r) {                                                         \
    _tile_zero(C);                                                                      \
    _tile_loadd(A, q + r * kRun, q_stride);                                             \
    _tile_loadd(B, panel + r * static_cast<int64_t>(kTileInt8RunBytes), 64);            \
    _tile_dpbssd(C, A, B);                                                              \
    _tile_stored(C, c, 64);                                                             \
  }
TOY_TILE_RUN(run_on_set0, 0, 2, 4)
TOY_TILE_RUN(run_on_set1, 1, 3, 5)
#undef TOY_TILE_RUN

// Runs whose int32 sums are stored before they are scaled. Scaling right after each product
// would wait for the tile unit's latency every time; a group of products is issued back to
// back, and the group after it (into the other buffer) proceeds while this one is scaled.
constexpr int64_t kGroup = 4;
using GroupSums = int32_t[kGroup][16 * 16];

// The products of runs [r0, r0 + n) of one 16-row tile of A, alternating the two tile sets
// so that consecutive products do not wait for each other.
inline void products(GroupSums& sums, const int8_t* q, int64_t stride, const uint8_t* panel,
                     int64_t r0, int64_t n) {
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    run_on_set0(sums[i], q, stride, panel, r0 + i);
    run_on_set1(sums[i + 1], q, stride, panel, r0 + i + 1);
  }
  if (i < n) run_on_set0(sums[i], q, stride, panel, r0 + i);
}

// acc[m] += float(sums of run r)[m] · (w.scale · x.scale[m]) (+ the min terms), for the 16
// rows m and the runs r0 .. r0 + n in order.
template <bool kMins>
inline void scale_into(float* acc, const GroupSums& sums, const uint8_t* panel,
                       const float* x_scale, const float* x_sum, int64_t stride, int64_t r0,
                       int64_t n) {
  __m512 w_scale[kGroup];
  for (int64_t i = 0; i < n; ++i) w_scale[i] = _mm512_loadu_ps(run_at(panel, r0 + i).scale);
  for (int m = 0; m < 16; ++m) {
    // A run is 8 lanes of the packed row; x.scale has one entry per lane, x.sum per 16.
    const float* xs = x_scale + m * stride + r0 * 8;
    const float* xsum = x_sum + m * stride / 4 + r0 * 2;
    __m512 a = _mm512_load_ps(acc + 16 * m);
#pragma GCC unroll 8
    for (int64_t i = 0; i < n; ++i) {
      const __m512 c = _mm512_cvtepi32_ps(_mm512_load_si512(sums[i] + 16 * m));
      a = _mm512_fmadd_ps(c, _mm512_mul_ps(w_scale[i], _mm512_set1_ps(xs[i * 8])), a);
      if constexpr (kMins) {
        const Run run = run_at(panel, r0 + i);
        a = _mm512_fmadd_ps(_mm512_loadu_ps(run.min_lo), _mm512_set1_ps(xsum[i * 2]), a);
        a = _mm512_fmadd_ps(_mm512_loadu_ps(run.min_hi), _mm512_set1_ps(xsum[i * 2 + 1]), a);
      }
    }
    _mm512_store_ps(acc + 16 * m, a);
  }
}

template <bool kMins>
void gemm(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const uint8_t* panel,
          int64_t n_valid, int64_t np) {
  use_tile_shapes(TileShapes::Int8Gemm);
  const int64_t runs = np / kRun;
  // Codes (bytes) between activation rows, and floats between their scales (4 times those
  // between their sums). One row is read 16 times, harmlessly.
  const int64_t stride = T > 1 ? x[1].q - x[0].q : 0;
  const int64_t scale_stride = T > 1 ? x[1].scale - x[0].scale : 0;
  const __mmask16 columns = tail_mask(n_valid);
  alignas(64) GroupSums sums[2];
  alignas(64) float acc[16 * 16];
  for (int64_t t0 = 0; t0 < T; t0 += 16) {
    const int8_t* q = x[0].q + t0 * stride;
    const float* x_scale = x[0].scale + t0 * scale_stride;
    const float* x_sum = x[0].sum + t0 * scale_stride / 4;
    for (int m = 0; m < 16; ++m) _mm512_store_ps(acc + 16 * m, _mm512_setzero_ps());
    int buffer = 0;
    for (int64_t r0 = 0; r0 < runs; r0 += kGroup, buffer ^= 1) {
      const int64_t n = runs - r0 < kGroup ? runs - r0 : kGroup;
      products(sums[buffer], q, stride, panel, r0, n);
      scale_into<kMins>(acc, sums[buffer], panel, x_scale, x_sum, scale_stride, r0, n);
    }
    const int64_t rows = T - t0 < 16 ? T - t0 : 16;
    for (int64_t m = 0; m < rows; ++m)
      _mm512_mask_storeu_ps(y + (t0 + m) * ldy, columns, _mm512_load_ps(acc + 16 * m));
  }
}

}  // namespace

bool pack_tile_int8(uint8_t* panel, const PackedWeightRow* w, int64_t count, int64_t np,
                    const IntDotTraits& traits) {
  if (traits.scale_run < kRun) return false;
  // u − z lies in [-128, 127] for every type (z = 128 only for Q8_0's u = q + 128), so the
  // byte subtraction's wrap-around gives the signed code.
  const __m256i zero_point = _mm256_set1_epi8(static_cast<char>(traits.zero_point));
  // Dword i of a row's run (its codes 4i..4i+3) goes to B tile row i.
  const __m256i tile_rows = _mm256_setr_epi32(0, 64, 128, 192, 256, 320, 384, 448);
  for (int64_t r = 0; r < np / kRun; ++r) {
    uint8_t* base = panel + r * static_cast<int64_t>(kTileInt8RunBytes);
    auto* scale = reinterpret_cast<float*>(base + 512);
    float* min_lo = scale + 16;
    float* min_hi = scale + 32;
    for (int64_t j = 0; j < kTileInt8Rows; ++j) {
      const bool real = j < count;
      const __m256i codes =
          real ? _mm256_sub_epi8(
                     _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[j].u + r * kRun)),
                     zero_point)
               : _mm256_setzero_si256();
      _mm256_i32scatter_epi32(base + 4 * j, tile_rows, codes, 1);
      scale[j] = real ? w[j].scale[r * 8] : 0.0f;
      min_lo[j] = real && traits.has_mins ? w[j].min[r * 2] : 0.0f;
      min_hi[j] = real && traits.has_mins ? w[j].min[r * 2 + 1] : 0.0f;
    }
  }
  return true;
}

void gemm_tile_int8(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const uint8_t* panel,
                    int64_t n_valid, int64_t np, const IntDotTraits& traits) {
  if (traits.has_mins)
    gemm<true>(y, ldy, x, T, panel, n_valid, np);
  else
    gemm<false>(y, ldy, x, T, panel, n_valid, np);
}

}  // namespace toy::cpu::avx512
