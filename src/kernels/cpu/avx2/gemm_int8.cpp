// AVX2 integer GEMM on packed rows (quant/dot_pack.h). Without VNNI, 4 u8×s8
// products are summed with vpmaddubsw (pairs into saturating int16) and
// vpmaddwd (pairs of those into int32). The int16 step cannot saturate for codes
// up to 63 (2·63·127 < 32767), which covers every type but Q8_0; Q8_0's codes
// u = q + 128 are turned back into signed q and multiplied as |q| × sign(x, q)
// (2·128·127 < 32767), which equals the zero-point form (u − 128)·x exactly.
#include "kernels/cpu/avx2/simd.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx2 {
namespace {

using quant::PackedActRow;
using quant::PackedWeightRow;

constexpr int kTileT = 4;     // activation rows per register tile
constexpr int kTileRows = 2;  // weight rows per register tile

enum class Codes { Unsigned, UnsignedWithStart, Signed };

// sum_g w.min[g] * x.sum[g]: the min correction of types with mins.
float min_correction(const PackedWeightRow& w, const PackedActRow& x, int64_t groups) {
  __m256 acc = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= groups; g += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(w.min + g), _mm256_loadu_ps(x.sum + g), acc);
  float sum = hsum(acc);
  for (; g < groups; ++g) sum += w.min[g] * x.sum[g];
  return sum;
}

template <int MR, int NR, Codes kCodes, bool kMins>
void tile(float* y, int64_t ldy, const PackedActRow* x, const PackedWeightRow* w, int64_t np) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t c = 0; c < np / 32; ++c) {
    __m256i xq[MR];
    for (int i = 0; i < MR; ++i)
      xq[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].q + 32 * c));
    for (int j = 0; j < NR; ++j) {
      __m256i wu = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[j].u + 32 * c));
      if constexpr (kCodes == Codes::Signed)
        wu = _mm256_xor_si256(wu, _mm256_set1_epi8(static_cast<char>(0x80)));
      const __m256 ws = _mm256_loadu_ps(w[j].scale + 8 * c);
      for (int i = 0; i < MR; ++i) {
        __m256i pairs;
        if constexpr (kCodes == Codes::Signed) {
          pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(wu, wu), _mm256_sign_epi8(xq[i], wu));
        } else {
          pairs = _mm256_maddubs_epi16(wu, xq[i]);
        }
        __m256i dot = _mm256_madd_epi16(pairs, ones);
        if constexpr (kCodes == Codes::UnsignedWithStart)
          dot = _mm256_add_epi32(
              dot, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].start + 8 * c)));
        const __m256 scale = _mm256_mul_ps(ws, _mm256_loadu_ps(x[i].scale + 8 * c));
        acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[i][j]);
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

template <Codes kCodes, bool kMins>
struct TileTable {
  TileFn fn[kTileT][kTileRows];
  template <int MR, int NR>
  constexpr void set() {
    fn[MR - 1][NR - 1] = &tile<MR, NR, kCodes, kMins>;
    if constexpr (NR < kTileRows)
      set<MR, NR + 1>();
    else if constexpr (MR < kTileT)
      set<MR + 1, 1>();
  }
  constexpr TileTable() : fn{} { set<1, 1>(); }
};

template <Codes kCodes, bool kMins>
void gemm(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const PackedWeightRow* w,
          int64_t n_rows, int64_t np) {
  static constexpr TileTable<kCodes, kMins> table;
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
  if (traits.zero_point == 128) {
    // Q8_0 (the only type with codes above 63); it has no mins.
    gemm<Codes::Signed, false>(y, ldy, x, T, w, n_rows, np);
  } else if (traits.zero_point != 0) {
    if (traits.has_mins)
      gemm<Codes::UnsignedWithStart, true>(y, ldy, x, T, w, n_rows, np);
    else
      gemm<Codes::UnsignedWithStart, false>(y, ldy, x, T, w, n_rows, np);
  } else {
    if (traits.has_mins)
      gemm<Codes::Unsigned, true>(y, ldy, x, T, w, n_rows, np);
    else
      gemm<Codes::Unsigned, false>(y, ldy, x, T, w, n_rows, np);
  }
}

}  // namespace toy::cpu::avx2
