// AVX2 products straight on stored Q8_0 / Q4_0 / Q5_0 weight blocks, for a few
// activation rows (decode): no packed copy of the weights is written, so each
// weight byte is read once from memory, as llama.cpp's vec_dot does. Each block of
// 32 becomes signed int8 codes w in registers and is multiplied with the
// activation's Q8_0 codes as |w| × sign(x, w) (vpmaddubsw, then vpmaddwd), the
// int32 sums scaled by d_w · d_x. Integer sums per block equal the packed path's;
// only the order of the float additions differs.
#include <cstring>
#include <type_traits>

#include "kernels/cpu/avx2/simd.h"
#include "kernels/cpu/backend.h"
#include "quant/blocks.h"

namespace toy::cpu::avx2 {
namespace {

constexpr int64_t kMaxRows = 4;  // activation rows handled together

// 16 bytes of nibbles -> 32 codes: low nibbles (elements 0..15), then high (16..31).
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0xF);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask),
                          _mm_and_si128(bytes, mask));
}

// Bit 4 of code j from bit j of qh (Q5_0's fifth bits), as 0x10 or 0.
inline __m256i fifth_bits(const uint8_t qh[4]) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                           2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit),
                          _mm256_set1_epi8(0x10));
}

template <typename Block>
inline __m256i signed_codes(const Block& b) {
  if constexpr (std::is_same_v<Block, quant::BlockQ8_0>) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
  } else if constexpr (std::is_same_v<Block, quant::BlockQ4_0>) {
    return _mm256_sub_epi8(nibbles(b.qs), _mm256_set1_epi8(8));
  } else {
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)), _mm256_set1_epi8(16));
  }
}

template <typename Block, int64_t T>
void rows_of(float* y, int64_t ldy, const quant::PackedActRow* x, const uint8_t* w, size_t w_stride,
             int64_t n_rows, int64_t nb) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t o = 0; o < n_rows; ++o) {
    const Block* blocks = reinterpret_cast<const Block*>(w + o * w_stride);
    if (o + 2 < n_rows) {  // the row after next, while this one is computed
      const uint8_t* ahead = w + (o + 2) * w_stride;
      for (size_t off = 0; off < static_cast<size_t>(nb) * sizeof(Block); off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(ahead + off), _MM_HINT_T0);
    }
    __m256 acc[T];
    for (int64_t t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i ws = signed_codes(blocks[b]);
      const __m256i magnitude = _mm256_sign_epi8(ws, ws);
      const float dw = _cvtsh_ss(blocks[b].d);
      for (int64_t t = 0; t < T; ++t) {
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].q + 32 * b));
        const __m256i dot =
            _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xq, ws)), ones);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * x[t].scale[8 * b]),
                                 acc[t]);
      }
    }
    for (int64_t t = 0; t < T; ++t) y[t * ldy + o] = hsum(acc[t]);
  }
}

template <typename Block>
void dispatch(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T, const uint8_t* w,
              size_t w_stride, int64_t n_rows, int64_t nb) {
  switch (T) {
    case 1:
      return rows_of<Block, 1>(y, ldy, x, w, w_stride, n_rows, nb);
    case 2:
      return rows_of<Block, 2>(y, ldy, x, w, w_stride, n_rows, nb);
    case 3:
      return rows_of<Block, 3>(y, ldy, x, w, w_stride, n_rows, nb);
    default:
      return rows_of<Block, 4>(y, ldy, x, w, w_stride, n_rows, nb);
  }
}

}  // namespace

bool gemm_blocks(float* y, int64_t ldy, const quant::PackedActRow* x, int64_t T, const void* w,
                 size_t w_stride, int64_t n_rows, int64_t n, DType type) {
  if (T < 1 || T > kMaxRows) return false;
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t nb = n / 32;
  switch (type) {
    case DType::Q8_0:
      dispatch<quant::BlockQ8_0>(y, ldy, x, T, wb, w_stride, n_rows, nb);
      return true;
    case DType::Q4_0:
      dispatch<quant::BlockQ4_0>(y, ldy, x, T, wb, w_stride, n_rows, nb);
      return true;
    case DType::Q5_0:
      dispatch<quant::BlockQ5_0>(y, ldy, x, T, wb, w_stride, n_rows, nb);
      return true;
    default:
      return false;
  }
}

}  // namespace toy::cpu::avx2
