// AVX-512 float GEMM behind matmul(): W rows stored as F32, F16 or BF16 are
// converted to F32 in registers; register tiles of 4 activation rows × 6 weight rows.
#include <cstring>

#include "kernels/cpu/avx512/simd.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx512 {
namespace {

constexpr int kTileT = 4;     // activation rows per register tile
constexpr int kTileRows = 6;  // weight rows per register tile

// BF16 rounding of one float, ties to even; NaN truncated and made quiet
// (quant/fp16.h's f32_to_bf16, which this file must not call: see backend.h).
inline float bf16_round(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
    bits = (bits & 0xFFFF0000u) | 0x00400000u;
  else
    bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// 16 weights starting at element k of a row, as F32; `mask` selects the valid tail.
template <FloatWeight W>
inline __m512 load_weights(const uint8_t* row, int64_t k, __mmask16 mask) {
  if constexpr (W == FloatWeight::F32) {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(row) + k);
  } else if constexpr (W == FloatWeight::F16) {
    return _mm512_cvtph_ps(
        _mm256_maskz_loadu_epi16(mask, reinterpret_cast<const uint16_t*>(row) + k));
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, reinterpret_cast<const uint16_t*>(row) + k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <FloatWeight W>
inline __m512 load_weights(const uint8_t* row, int64_t k) {
  if constexpr (W == FloatWeight::F32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (W == FloatWeight::F16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(reinterpret_cast<const uint16_t*>(row) + k)));
  } else {
    const __m256i h = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(reinterpret_cast<const uint16_t*>(row) + k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <int MR, int NR, FloatWeight W>
void tile(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
          int64_t K) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_loadu_ps(x + i * ldx + k);
    for (int j = 0; j < NR; ++j) {
      const __m512 wv = load_weights<W>(w + j * w_stride, k);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  if (k < K) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (K - k)) - 1u);
    __m512 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_maskz_loadu_ps(mask, x + i * ldx + k);
    for (int j = 0; j < NR; ++j) {
      const __m512 wv = load_weights<W>(w + j * w_stride, k, mask);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = hsum(acc[i][j]);
}

using TileFn = void (*)(float*, int64_t, const float*, int64_t, const uint8_t*, size_t, int64_t);

// tiles[mr - 1][nr - 1] for the edge tiles.
template <FloatWeight W>
struct TileTable {
  TileFn fn[kTileT][kTileRows];
  template <int MR, int NR>
  constexpr void set() {
    fn[MR - 1][NR - 1] = &tile<MR, NR, W>;
    if constexpr (NR < kTileRows)
      set<MR, NR + 1>();
    else if constexpr (MR < kTileT)
      set<MR + 1, 1>();
  }
  constexpr TileTable() : fn{} { set<1, 1>(); }
};

template <FloatWeight W>
void gemm(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t T, const uint8_t* w,
          size_t w_stride, int64_t n_rows, int64_t K) {
  static constexpr TileTable<W> table;
  for (int64_t t = 0; t < T; t += kTileT) {
    const int mr = static_cast<int>(T - t < kTileT ? T - t : kTileT);
    for (int64_t o = 0; o < n_rows; o += kTileRows) {
      const int nr = static_cast<int>(n_rows - o < kTileRows ? n_rows - o : kTileRows);
      table.fn[mr - 1][nr - 1](y + t * ldy + o, ldy, x + t * ldx, ldx, w + o * w_stride, w_stride,
                               K);
    }
  }
}

template <FloatWeight W>
void widen(float* dst, const uint8_t* w, size_t w_stride, int64_t rows, int64_t K) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * w_stride;
    float* out = dst + r * K;
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) _mm512_storeu_ps(out + k, load_weights<W>(row, k));
    if (k < K) {
      const __mmask16 mask = static_cast<__mmask16>((1u << (K - k)) - 1u);
      _mm512_mask_storeu_ps(out + k, mask, load_weights<W>(row, k, mask));
    }
  }
}

}  // namespace

void widen_rows(float* dst, const void* w, size_t w_stride, FloatWeight type, int64_t rows,
                int64_t K) {
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (type) {
    case FloatWeight::F32:
      widen<FloatWeight::F32>(dst, wb, w_stride, rows, K);
      break;
    case FloatWeight::F16:
      widen<FloatWeight::F16>(dst, wb, w_stride, rows, K);
      break;
    case FloatWeight::BF16:
      widen<FloatWeight::BF16>(dst, wb, w_stride, rows, K);
      break;
  }
}

void round_to_16bit(float* dst, const float* x, int64_t n, FloatWeight type) {
  int64_t i = 0;
  if (type == FloatWeight::F16) {
    for (; i + 16 <= n; i += 16) {
      const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
      _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
    }
  } else {
    // BF16: add 0x7FFF plus the lowest kept bit, clear the 16 dropped bits; NaNs untouched.
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_loadu_ps(x + i);
      const __m512i bits = _mm512_castps_si512(v);
      const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
      const __m512i rounded =
          _mm512_and_si512(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))),
                           _mm512_set1_epi32(static_cast<int>(0xFFFF0000u)));
      // NaN: truncated and made quiet, as quant/fp16.h's f32_to_bf16.
      const __m512i quiet_nan =
          _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))),
                          _mm512_set1_epi32(0x00400000));
      const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      _mm512_storeu_ps(dst + i, _mm512_mask_mov_ps(_mm512_castsi512_ps(rounded), nan,
                                                   _mm512_castsi512_ps(quiet_nan)));
    }
  }
  for (; i < n; ++i) {
    dst[i] = type == FloatWeight::F16 ? _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT))
                                      : bf16_round(x[i]);
  }
}

void gemm_float(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t T, const void* w,
                size_t w_stride, FloatWeight type, int64_t n_rows, int64_t K) {
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (type) {
    case FloatWeight::F32:
      gemm<FloatWeight::F32>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
      break;
    case FloatWeight::F16:
      gemm<FloatWeight::F16>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
      break;
    case FloatWeight::BF16:
      gemm<FloatWeight::BF16>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
      break;
  }
}

}  // namespace toy::cpu::avx512
