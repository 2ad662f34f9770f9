// AVX-512 VNNI integer GEMM on packed rows (quant/dot_pack.h): vpdpbusd sums 4
// u8×s8 products per int32 lane exactly, on top of the activation's start value
// (the weight's zero point), then each lane is scaled in F32.
#include "kernels/cpu/avx512/simd.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx512 {
namespace {

using quant::PackedActRow;
using quant::PackedWeightRow;

constexpr int kTileT = 4;     // activation rows per register tile
constexpr int kTileRows = 4;  // weight rows per register tile

// sum_g w.min[g] * x.sum[g]: the min correction of types with mins.
float min_correction(const PackedWeightRow& w, const PackedActRow& x, int64_t groups) {
  float sum = 0.0f;
  int64_t g = 0;
  __m512 acc = _mm512_setzero_ps();
  for (; g + 16 <= groups; g += 16)
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(w.min + g), _mm512_loadu_ps(x.sum + g), acc);
  sum = hsum(acc);
  for (; g < groups; ++g) sum += w.min[g] * x.sum[g];
  return sum;
}

template <int MR, int NR, bool kStart, bool kMins>
void tile(float* y, int64_t ldy, const PackedActRow* x, const PackedWeightRow* w, int64_t np) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < np / 64; ++c) {
    __m512i xq[MR];
    for (int i = 0; i < MR; ++i) xq[i] = _mm512_loadu_si512(x[i].q + 64 * c);
    for (int j = 0; j < NR; ++j) {
      const __m512i wu = _mm512_loadu_si512(w[j].u + 64 * c);
      const __m512 ws = _mm512_loadu_ps(w[j].scale + 16 * c);
      for (int i = 0; i < MR; ++i) {
        const __m512i start =
            kStart ? _mm512_loadu_si512(x[i].start + 16 * c) : _mm512_setzero_si512();
        const __m512i dot = _mm512_dpbusd_epi32(start, wu, xq[i]);
        const __m512 scale = _mm512_mul_ps(ws, _mm512_loadu_ps(x[i].scale + 16 * c));
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float v = hsum(acc[i][j]);
      if constexpr (kMins) v += min_correction(w[j], x[i], np / 16);
      y[i * ldy + j] = v;
    }
}

using TileFn = void (*)(float*, int64_t, const PackedActRow*, const PackedWeightRow*, int64_t);

template <bool kStart, bool kMins>
struct TileTable {
  TileFn fn[kTileT][kTileRows];
  template <int MR, int NR>
  constexpr void set() {
    fn[MR - 1][NR - 1] = &tile<MR, NR, kStart, kMins>;
    if constexpr (NR < kTileRows)
      set<MR, NR + 1>();
    else if constexpr (MR < kTileT)
      set<MR + 1, 1>();
  }
  constexpr TileTable() : fn{} { set<1, 1>(); }
};

template <bool kStart, bool kMins>
void gemm(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const PackedWeightRow* w,
          int64_t n_rows, int64_t np) {
  static constexpr TileTable<kStart, kMins> table;
  for (int64_t t = 0; t < T; t += kTileT) {
    const int mr = static_cast<int>(T - t < kTileT ? T - t : kTileT);
    for (int64_t o = 0; o < n_rows; o += kTileRows) {
      const int nr = static_cast<int>(n_rows - o < kTileRows ? n_rows - o : kTileRows);
      table.fn[mr - 1][nr - 1](y + t * ldy + o, ldy, x + t, w + o, np);
    }
  }
}

}  // namespace

void gemm_int8(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const PackedWeightRow* w,
               int64_t n_rows, int64_t np, const quant::IntDotTraits& traits) {
  const bool use_start = traits.zero_point != 0, use_mins = traits.has_mins;
  if (use_start) {
    if (use_mins)
      gemm<true, true>(y, ldy, x, T, w, n_rows, np);
    else
      gemm<true, false>(y, ldy, x, T, w, n_rows, np);
  } else {
    if (use_mins)
      gemm<false, true>(y, ldy, x, T, w, n_rows, np);
    else
      gemm<false, false>(y, ldy, x, T, w, n_rows, np);
  }
}

}  // namespace toy::cpu::avx512
