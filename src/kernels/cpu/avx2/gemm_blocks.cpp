// AVX2 products straight on stored weight blocks (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K,
// Q6_K), for a few activation rows (decode): no packed copy of the weights is written, so
// each weight byte is read once from memory, as llama.cpp's vec_dot does. Each kernel is
// gemm_int8's arithmetic step for step on the codes, lane scales and min groups the
// packer would write (quant/dot_pack.h), so an activation row gets the same bits whether
// it is decoded alone (here) or with more rows than these kernels take (packed).
//
// Q8_0 / Q4_0 / Q5_0 become signed codes w = u − z multiplied as |w| × sign(x, w), which
// gives the packed path's u·x + start exactly; the others multiply their unsigned codes
// (vpmaddubsw, then vpmaddwd) as the packed path does.
#include <cstring>
#include <type_traits>

#include "kernels/cpu/avx2/simd.h"
#include "kernels/cpu/backend.h"
#include "kernels/cpu/k_quant_scales.h"
#include "kernels/cpu/row_count.h"
#include "kernels/cpu/x86_q6_k_codes.h"
#include "quant/blocks.h"

namespace toy::cpu::avx2 {
namespace {

using quant::PackedActRow;

constexpr int64_t kMaxRows = 4;  // activation rows handled together (matmul's kStreamingT)
// How far ahead of the block being multiplied its row is prefetched (one row at a time,
// so the weights are one sequential stream); 256..2048 bytes measured alike on a 2-core
// AVX2-only EPYC (Zen 3), within its run-to-run noise.
constexpr int64_t kPrefetchBytes = 512;

template <typename Block>
constexpr bool kSigned =
    std::is_same_v<Block, quant::BlockQ8_0> || std::is_same_v<Block, quant::BlockQ4_0> ||
    std::is_same_v<Block, quant::BlockQ5_0>;
template <typename Block>
constexpr bool kHasQh =
    std::is_same_v<Block, quant::BlockQ5_0> || std::is_same_v<Block, quant::BlockQ5_1>;

// 16 bytes of nibbles -> 32 codes: low nibbles (elements 0..15), then high (16..31).
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0xF);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask),
                          _mm_and_si128(bytes, mask));
}

// Bit 4 of code j from bit j of qh (the fifth bits of Q5_0 / Q5_1), as 0x10 or 0.
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

// One block of 32 as codes: signed w = u − z for the types with a zero point (Q8_0's stored
// bytes), the packed row's unsigned u for the others.
template <typename Block>
inline __m256i codes(const Block& b) {
  if constexpr (std::is_same_v<Block, quant::BlockQ8_0>) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
  } else if constexpr (std::is_same_v<Block, quant::BlockQ4_0>) {
    return _mm256_sub_epi8(nibbles(b.qs), _mm256_set1_epi8(8));
  } else if constexpr (std::is_same_v<Block, quant::BlockQ5_0>) {
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)), _mm256_set1_epi8(16));
  } else if constexpr (kHasQh<Block>) {
    return _mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh));
  } else {
    return nibbles(b.qs);
  }
}

// The int32 lane sums of one 32-element chunk: Σ w·x per lane of 4 for signed codes
// (|w| × sign(x, w), = the packed path's u·x + start), Σ u·x for unsigned ones.
template <bool kSignedCodes>
inline __m256i lane_dots(__m256i w, const int8_t* xq) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
  if constexpr (kSignedCodes) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)),
                             ones);
  } else {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones);
  }
}

// acc += dot · (w_scale · x_scale), the packed tile's float step for chunk c.
inline __m256 scaled(__m256 acc, __m256i dot, __m256 w_scale, const float* x_scale) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(w_scale, _mm256_loadu_ps(x_scale)),
                         acc);
}

// Σ_g min[g] · x_sum[g] over the packed row's groups of 16 (np / 16 of them; a block's m is
// the min of both its groups, the padding's is 0), in gemm_int8's order: 8 groups per
// vector step, then one at a time.
template <typename Block>
inline float min_term(const Block* blocks, int64_t nb, int64_t groups, const float* x_sum) {
  __m256 acc = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= groups; g += 8) {
    const int64_t b = g / 2;  // 4 blocks, each min on two lanes
    auto m = [&](int64_t i) { return static_cast<short>(b + i < nb ? blocks[b + i].m : 0); };
    const __m256 mins =
        _mm256_cvtph_ps(_mm_setr_epi16(m(0), m(0), m(1), m(1), m(2), m(2), m(3), m(3)));
    acc = _mm256_fmadd_ps(mins, _mm256_loadu_ps(x_sum + g), acc);
  }
  float sum = hsum(acc);
  for (; g < groups; ++g) sum += (g / 2 < nb ? _cvtsh_ss(blocks[g / 2].m) : 0.0f) * x_sum[g];
  return sum;
}

// y[t * ldy + o] for weight rows o < n_rows of nb blocks of 32, one row at a time.
template <typename Block, int T>
void rows_of(float* y, int64_t ldy, const PackedActRow* x, const uint8_t* w, size_t w_stride,
             int64_t n_rows, int64_t nb) {
  const int64_t groups = (nb + 1) / 2 * 4;  // packed_length(32 · nb) / 16
  for (int64_t o = 0; o < n_rows; ++o) {
    const Block* blocks = reinterpret_cast<const Block*>(w + o * w_stride);
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      // Past the matrix's end this touches bytes it does not use; prefetches never fault.
      _mm_prefetch(reinterpret_cast<const char*>(blocks + b) + kPrefetchBytes, _MM_HINT_T0);
      const __m256i u = codes(blocks[b]);
      const __m256 ws = _mm256_set1_ps(_cvtsh_ss(blocks[b].d));
      for (int t = 0; t < T; ++t)
        acc[t] =
            scaled(acc[t], lane_dots<kSigned<Block>>(u, x[t].q + 32 * b), ws, x[t].scale + 8 * b);
    }
    for (int t = 0; t < T; ++t) {
      float v = hsum(acc[t]);
      if constexpr (!kSigned<Block>) v += min_term(blocks, nb, groups, x[t].sum);
      y[t * ldy + o] = v;
    }
  }
}

// Q4_K: sub-block j of 32 is chunk 8s + j of the packed row (low nibbles of qs[32c..32c+32)
// for j = 2c, their high nibbles for j = 2c + 1), lane scale d·sc[j]; the min correction's
// 16 groups −dmin·m per super-block are two of gemm_int8's 8-group steps.
template <int T>
void rows_q4_k(float* y, int64_t ldy, const PackedActRow* x, const uint8_t* w, size_t w_stride,
               int64_t n_rows, int64_t n_super) {
  const __m256i low = _mm256_set1_epi8(0xF);
  for (int64_t o = 0; o < n_rows; ++o) {
    const auto* blocks = reinterpret_cast<const quant::BlockQ4_K*>(w + o * w_stride);
    __m256 acc[T], acc_min[T];
    for (int t = 0; t < T; ++t) acc[t] = acc_min[t] = _mm256_setzero_ps();
    for (int64_t s = 0; s < n_super; ++s) {
      const quant::BlockQ4_K& b = blocks[s];
      const char* ahead = reinterpret_cast<const char*>(&b) + kPrefetchBytes;
      for (int line = 0; line < 3; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T0);
      float sc[8];
      alignas(32) float mins[16];
      q4_k_scales(b, _cvtsh_ss(b.d), _cvtsh_ss(b.dmin), sc, mins);
      for (int c = 0; c < 4; ++c) {
        const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * c));
        const __m256i lo = _mm256_and_si256(bytes, low);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low);
        const __m256 ws_lo = _mm256_set1_ps(sc[2 * c]), ws_hi = _mm256_set1_ps(sc[2 * c + 1]);
        const int64_t chunk = 8 * s + 2 * c;
        for (int t = 0; t < T; ++t) {
          acc[t] = scaled(acc[t], lane_dots<false>(lo, x[t].q + 32 * chunk), ws_lo,
                          x[t].scale + 8 * chunk);
          acc[t] = scaled(acc[t], lane_dots<false>(hi, x[t].q + 32 * chunk + 32), ws_hi,
                          x[t].scale + 8 * chunk + 8);
        }
      }
      const __m256 m0 = _mm256_load_ps(mins), m1 = _mm256_load_ps(mins + 8);
      for (int t = 0; t < T; ++t) {
        acc_min[t] = _mm256_fmadd_ps(m0, _mm256_loadu_ps(x[t].sum + 16 * s), acc_min[t]);
        acc_min[t] = _mm256_fmadd_ps(m1, _mm256_loadu_ps(x[t].sum + 16 * s + 8), acc_min[t]);
      }
    }
    for (int t = 0; t < T; ++t) {
      float v = hsum(acc[t]);
      v += hsum(acc_min[t]);
      y[t * ldy + o] = v;
    }
  }
}

// Q6_K (zero point 32, a scale per 16 elements): element 128·half + 32·k + l is a nibble of
// ql (low for k = 0, 1, high for 2, 3) with bits 2k..2k+1 of qh[l] on top, chunk
// 8s + 4·half + k of the packed row; its two groups of 16 have scales d·sc on 4 lanes each,
// and x.start's −32·Σq is added to the lane sums, as the packed path does.
template <int T>
void rows_q6_k(float* y, int64_t ldy, const PackedActRow* x, const uint8_t* w, size_t w_stride,
               int64_t n_rows, int64_t n_super) {
  for (int64_t o = 0; o < n_rows; ++o) {
    const auto* blocks = reinterpret_cast<const quant::BlockQ6_K*>(w + o * w_stride);
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t s = 0; s < n_super; ++s) {
      const quant::BlockQ6_K& b = blocks[s];
      const char* ahead = reinterpret_cast<const char*>(&b) + kPrefetchBytes;
      for (int line = 0; line < 4; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T0);
      float group_scale[16];
      q6_k_scales(b, _cvtsh_ss(b.d), group_scale);
      for (int half = 0; half < 2; ++half) {
        const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * half));
        const __m256i ql1 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * half + 32));
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * half));
        for (int k = 0; k < 4; ++k) {
          const __m256i u = q6_k_codes(ql0, ql1, h, k);
          const int g = 8 * half + 2 * k;
          const __m256 ws =
              _mm256_set_m128(_mm_set1_ps(group_scale[g + 1]), _mm_set1_ps(group_scale[g]));
          const int64_t chunk = 8 * s + 4 * half + k;
          for (int t = 0; t < T; ++t) {
            const __m256i dot = _mm256_add_epi32(
                lane_dots<false>(u, x[t].q + 32 * chunk),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].start + 8 * chunk)));
            acc[t] = scaled(acc[t], dot, ws, x[t].scale + 8 * chunk);
          }
        }
      }
    }
    for (int t = 0; t < T; ++t) y[t * ldy + o] = hsum(acc[t]);
  }
}

template <typename Block>
void legacy(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const uint8_t* w,
            size_t w_stride, int64_t n_rows, int64_t nb) {
  with_row_count(T, [&](auto rows) {
    rows_of<Block, decltype(rows)::value>(y, ldy, x, w, w_stride, n_rows, nb);
  });
}

}  // namespace

bool gemm_blocks(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const void* w,
                 size_t w_stride, int64_t n_rows, int64_t n, DType type) {
  if (T < 1 || T > kMaxRows) return false;
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t nb = n / 32;
  switch (type) {
    case DType::Q8_0:
      legacy<quant::BlockQ8_0>(y, ldy, x, T, wb, w_stride, n_rows, nb);
      return true;
    case DType::Q4_0:
      legacy<quant::BlockQ4_0>(y, ldy, x, T, wb, w_stride, n_rows, nb);
      return true;
    case DType::Q5_0:
      legacy<quant::BlockQ5_0>(y, ldy, x, T, wb, w_stride, n_rows, nb);
      return true;
    case DType::Q4_1:
      legacy<quant::BlockQ4_1>(y, ldy, x, T, wb, w_stride, n_rows, nb);
      return true;
    case DType::Q5_1:
      legacy<quant::BlockQ5_1>(y, ldy, x, T, wb, w_stride, n_rows, nb);
      return true;
    case DType::Q4_K:
      with_row_count(T, [&](auto rows) {
        rows_q4_k<decltype(rows)::value>(y, ldy, x, wb, w_stride, n_rows, n / 256);
      });
      return true;
    case DType::Q6_K:
      with_row_count(T, [&](auto rows) {
        rows_q6_k<decltype(rows)::value>(y, ldy, x, wb, w_stride, n_rows, n / 256);
      });
      return true;
    default:
      return false;
  }
}

}  // namespace toy::cpu::avx2
