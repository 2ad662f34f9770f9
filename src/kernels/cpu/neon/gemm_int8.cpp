// NEON integer GEMM on packed rows (quant/dot_pack.h) with the dotprod
// extension: sdot sums 4 s8×s8 products into each int32 lane, which is exactly
// one lane of the packed layout. sdot is signed × signed, so the weight codes
// are taken as (u − z) in registers (one byte subtraction; every type's u − z
// lies in −128..127, so the wrap-around byte is the signed value) instead of
// adding the activation row's start value −z·Σq. Both give the same integer:
// Σ(u − z)·q = −z·Σq + Σu·q, the generic backend's lane sum.
#include "kernels/cpu/backend.h"
#include "kernels/cpu/neon/simd.h"

namespace toy::cpu::neon {
namespace {

using quant::PackedActRow;
using quant::PackedWeightRow;

constexpr int kTileT = 4;     // activation rows per register tile
constexpr int kTileRows = 4;  // weight rows per register tile

// sum_g w.min[g] * x.sum[g]: the min correction of types with mins.
float min_correction(const PackedWeightRow& w, const PackedActRow& x, int64_t groups) {
  float32x4_t acc = vdupq_n_f32(0.0f);
  int64_t g = 0;
  for (; g + 4 <= groups; g += 4) acc = vfmaq_f32(acc, vld1q_f32(w.min + g), vld1q_f32(x.sum + g));
  float sum = vaddvq_f32(acc);
  for (; g < groups; ++g) sum += w.min[g] * x.sum[g];
  return sum;
}

// 16 elements (4 lanes) per step: per pair of rows one sdot, one int→float
// conversion, the lane scale product and one FMA.
template <int MR, int NR, bool kMins>
void tile(float* y, int64_t ldy, const PackedActRow* x, const PackedWeightRow* w, int64_t np,
          uint8x16_t zero_point) {
  float32x4_t acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = vdupq_n_f32(0.0f);
  for (int64_t c = 0; c < np / 16; ++c) {
    int8x16_t xq[MR];
    float32x4_t xs[MR];
    for (int i = 0; i < MR; ++i) {
      xq[i] = vld1q_s8(x[i].q + 16 * c);
      xs[i] = vld1q_f32(x[i].scale + 4 * c);
    }
    for (int j = 0; j < NR; ++j) {
      const int8x16_t wq = vreinterpretq_s8_u8(vsubq_u8(vld1q_u8(w[j].u + 16 * c), zero_point));
      const float32x4_t ws = vld1q_f32(w[j].scale + 4 * c);
      for (int i = 0; i < MR; ++i) {
        const int32x4_t dot = vdotq_s32(vdupq_n_s32(0), wq, xq[i]);
        acc[i][j] = vfmaq_f32(acc[i][j], vcvtq_f32_s32(dot), vmulq_f32(ws, xs[i]));
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float v = vaddvq_f32(acc[i][j]);
      if constexpr (kMins) v += min_correction(w[j], x[i], np / 16);
      y[i * ldy + j] = v;
    }
}

using TileFn = void (*)(float*, int64_t, const PackedActRow*, const PackedWeightRow*, int64_t,
                        uint8x16_t);

template <bool kMins>
struct TileTable {
  TileFn fn[kTileT][kTileRows];
  template <int MR, int NR>
  constexpr void set() {
    fn[MR - 1][NR - 1] = &tile<MR, NR, kMins>;
    if constexpr (NR < kTileRows)
      set<MR, NR + 1>();
    else if constexpr (MR < kTileT)
      set<MR + 1, 1>();
  }
  constexpr TileTable() : fn{} { set<1, 1>(); }
};

template <bool kMins>
void gemm(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const PackedWeightRow* w,
          int64_t n_rows, int64_t np, int zero_point) {
  static constexpr TileTable<kMins> table;
  const uint8x16_t z = vdupq_n_u8(static_cast<uint8_t>(zero_point));
  for (int64_t t = 0; t < T; t += kTileT) {
    const int mr = static_cast<int>(T - t < kTileT ? T - t : kTileT);
    for (int64_t o = 0; o < n_rows; o += kTileRows) {
      const int nr = static_cast<int>(n_rows - o < kTileRows ? n_rows - o : kTileRows);
      table.fn[mr - 1][nr - 1](y + t * ldy + o, ldy, x + t, w + o, np, z);
    }
  }
}

}  // namespace

void gemm_int8(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const PackedWeightRow* w,
               int64_t n_rows, int64_t np, const quant::IntDotTraits& traits) {
  if (traits.has_mins)
    gemm<true>(y, ldy, x, T, w, n_rows, np, traits.zero_point);
  else
    gemm<false>(y, ldy, x, T, w, n_rows, np, traits.zero_point);
}

}  // namespace toy::cpu::neon
