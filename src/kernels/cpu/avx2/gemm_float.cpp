// AVX2 float GEMM behind matmul(): W rows stored as F32, F16 or BF16 are
// converted to F32 in registers (F16C for F16); register tiles of 3 activation
// rows × 4 weight rows (12 accumulators + 3 activations + 1 weight = 16 ymm).
#include <cstring>

#include "kernels/cpu/avx2/simd.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx2 {
namespace {

constexpr int kTileT = 3;     // activation rows per register tile
constexpr int kTileRows = 4;  // weight rows per register tile

// 8 weights starting at element k of a row, as F32.
template <FloatWeight W>
inline __m256 load_weights(const uint8_t* row, int64_t k) {
  if constexpr (W == FloatWeight::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    if constexpr (W == FloatWeight::F16) {
      return _mm256_cvtph_ps(h);
    } else {
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
  }
}

// One weight as F32 (the K % 8 tail).
template <FloatWeight W>
inline float weight_at(const uint8_t* row, int64_t k) {
  if constexpr (W == FloatWeight::F32) {
    float v;
    std::memcpy(&v, row + 4 * k, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    if constexpr (W == FloatWeight::F16) {
      return _cvtsh_ss(h);
    } else {
      const uint32_t bits = static_cast<uint32_t>(h) << 16;
      float v;
      std::memcpy(&v, &bits, 4);
      return v;
    }
  }
}

template <int MR, int NR, FloatWeight W>
void tile(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
          int64_t K) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm256_loadu_ps(x + i * ldx + k);
    for (int j = 0; j < NR; ++j) {
      const __m256 wv = load_weights<W>(w + j * w_stride, k);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float sum = hsum(acc[i][j]);
      for (int64_t kk = k; kk < K; ++kk)
        sum += x[i * ldx + kk] * weight_at<W>(w + j * w_stride, kk);
      y[i * ldy + j] = sum;
    }
}

// Decode (one activation row): tile<1, 8>'s arithmetic, plus a prefetch of the weights
// `ahead` bytes past this tile's first row, spread over the k loop: each 8-element step
// consumes 8 rows × 8 weights = 64 · sizeof(weight) bytes of the tile, and prefetches as
// many bytes of the block that far ahead.
template <FloatWeight W>
void decode_tile(float* y, const float* x, const uint8_t* w, size_t w_stride, int64_t K,
                 size_t ahead) {
  constexpr int kLines = W == FloatWeight::F32 ? 4 : 2;  // cache lines per step
  __m256 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
  const char* pf = reinterpret_cast<const char*>(w) + ahead;
  int64_t k = 0;
  for (; k + 8 <= K; k += 8, pf += 64 * kLines) {
    for (int l = 0; l < kLines; ++l) _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
    const __m256 xv = _mm256_loadu_ps(x + k);
    for (int j = 0; j < 8; ++j)
      acc[j] = _mm256_fmadd_ps(xv, load_weights<W>(w + j * w_stride, k), acc[j]);
  }
  for (int j = 0; j < 8; ++j) {
    float sum = hsum(acc[j]);
    for (int64_t kk = k; kk < K; ++kk) sum += x[kk] * weight_at<W>(w + j * w_stride, kk);
    y[j] = sum;
  }
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
          size_t w_stride, int64_t n_rows, int64_t K, bool tail = false) {
  static constexpr TileTable<W> table;
  if (T == 1 && !tail) {
    // Decode: 8 weight rows per tile, so 8 independent FMA chains hide the FMA
    // latency while the weights stream in (a 1 × 4 tile leaves half the FMA slots idle).
    // Each tile prefetches the next one: 8 short streams (one per row) gave the hardware
    // prefetcher too little to lock on to; F16 SmolLM2-shaped tg128 went 44-46 -> 50-57
    // tokens/s on a 2-core AVX2-only EPYC (llama.cpp 53-56), one tile ahead measured
    // better than two or four.
    int64_t o = 0;
    for (; o + 8 <= n_rows; o += 8)
      decode_tile<W>(y + o, x, w + o * w_stride, w_stride, K, 8 * w_stride);
    if (o < n_rows) gemm<W>(y + o, ldy, x, ldx, 1, w + o * w_stride, w_stride, n_rows - o, K, true);
    return;
  }
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
    for (; k + 8 <= K; k += 8) _mm256_storeu_ps(out + k, load_weights<W>(row, k));
    for (; k < K; ++k) out[k] = weight_at<W>(row, k);
  }
}

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

}  // namespace

void widen_rows(float* dst, const void* w, size_t w_stride, FloatWeight type, int64_t rows,
                int64_t K) {
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (type) {
    case FloatWeight::F32:
      return widen<FloatWeight::F32>(dst, wb, w_stride, rows, K);
    case FloatWeight::F16:
      return widen<FloatWeight::F16>(dst, wb, w_stride, rows, K);
    case FloatWeight::BF16:
      return widen<FloatWeight::BF16>(dst, wb, w_stride, rows, K);
  }
}

void round_to_16bit(float* dst, const float* x, int64_t n, FloatWeight type) {
  int64_t i = 0;
  if (type == FloatWeight::F16) {
    for (; i + 8 <= n; i += 8) {
      const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; ++i) dst[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
    return;
  }
  // BF16: add 0x7FFF plus the lowest kept bit, clear the 16 dropped bits; NaNs as above.
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded =
        _mm256_and_si256(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))),
                         _mm256_set1_epi32(static_cast<int>(0xFFFF0000u)));
    const __m256i quiet_nan =
        _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))),
                        _mm256_set1_epi32(0x00400000));
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    _mm256_storeu_ps(dst + i, _mm256_blendv_ps(_mm256_castsi256_ps(rounded),
                                               _mm256_castsi256_ps(quiet_nan), nan));
  }
  for (; i < n; ++i) dst[i] = bf16_round(x[i]);
}

void gemm_float(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t T, const void* w,
                size_t w_stride, FloatWeight type, int64_t n_rows, int64_t K) {
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (type) {
    case FloatWeight::F32:
      return gemm<FloatWeight::F32>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
    case FloatWeight::F16:
      return gemm<FloatWeight::F16>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
    case FloatWeight::BF16:
      return gemm<FloatWeight::BF16>(y, ldy, x, ldx, T, wb, w_stride, n_rows, K);
  }
}

}  // namespace toy::cpu::avx2
