// AVX-512 VNNI products straight on stored Q8_0 / Q4_0 / Q5_0 / Q4_1 / Q5_1 / Q4_K / Q6_K weight
// blocks, for a few activation rows (decode): no packed copy of the weights is written, so each
// weight byte is read once from memory.
//
// The arithmetic is the packed GEMM's (gemm_int8.cpp) step for step, so an
// activation row gets the same bits whether it is decoded alone (here) or with more
// than kStreamingT other rows (the packed path), which a server batching requests
// needs for reproducible greedy text. Two stored blocks of 32 make one 64-element
// chunk, rebuilt in a zmm exactly as quant/dot_pack.h lays out the packed row: the
// unsigned codes u (Q8_0: q + 128, Q4_0 / Q5_0: the stored codes), lane scales d
// of the first block in lanes 0..7 and of the second in 8..15. Then per chunk and
// activation row, as the packed tile does:
//   dot   = vpdpbusd(x.start, u, x.q)      exact int32 Σ (u - z)·q per 4 elements
//   scale = w.scale · x.scale              one F32 product per lane
//   acc   = fma(float(dot), scale, acc)    16 lanes, chunks in order
// and y = hsum(acc). An odd block count leaves the last chunk's upper half as the
// packed row's padding: u = 0 and scale = 0 there (x's padding is 0 too). Q4_1 / Q5_1
// (x = d·q + m) then add the packed path's min correction, Σ over groups of 16 of
// m · x.sum, summed the same way (16 groups per vector, then the rest one by one).
#include <cstring>
#include <type_traits>

#include "kernels/cpu/avx512/simd.h"
#include "kernels/cpu/backend.h"
#include "kernels/cpu/k_quant_scales.h"
#include "kernels/cpu/row_count.h"
#include "kernels/cpu/x86_q6_k_codes.h"
#include "quant/blocks.h"

namespace toy::cpu::avx512 {
namespace {

using quant::PackedActRow;

constexpr int64_t kMaxT = 4;  // activation rows handled together (matmul's kStreamingT)
// How far ahead of the chunk being multiplied the weights are prefetched: 256..512
// bytes measured best from DRAM on Zen 4 (768 and more, or a whole row, were slower).
constexpr int64_t kPrefetchBytes = 384;
// And into L2 from further ahead: a Sapphire Rapids Xeon (VM, 2 cores), whose loads wait
// longer, decoded Q8_0 at 116 tokens/s with the near prefetch alone and 160 with this one
// too (the near one moved to 2-4 KiB instead gave the same 160).
constexpr int64_t kFarPrefetchBytes = 3072;

template <typename Block>
constexpr bool kHasQh =
    std::is_same_v<Block, quant::BlockQ5_0> || std::is_same_v<Block, quant::BlockQ5_1>;
template <typename Block>
constexpr bool kHasMin =
    std::is_same_v<Block, quant::BlockQ4_1> || std::is_same_v<Block, quant::BlockQ5_1>;

// The packed row's unsigned codes of blocks b[0] and, when kPair, b[1] (zero otherwise,
// the packed row's padding).
template <typename Block, bool kPair>
inline __m512i codes(const Block* b) {
  if constexpr (std::is_same_v<Block, quant::BlockQ8_0>) {
    // u = q + 128: flip the sign bit of the stored bytes (not of the padding).
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    const __m256i lo =
        _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs)), flip);
    if constexpr (!kPair) return _mm512_zextsi256_si512(lo);
    const __m256i hi =
        _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), flip);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  } else {
    // 16 bytes of nibbles per block: low nibbles are elements 0..15, high 16..31.
    // Each block's bytes go to two 128-bit lanes, shifted right by 0 and by 4.
    const __m256i lo =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[0].qs)));
    __m512i v;
    if constexpr (kPair) {
      const __m256i hi =
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[1].qs)));
      v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    } else {
      v = _mm512_zextsi256_si512(lo);
    }
    v = _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xFF00FF00u, v, 4), _mm512_set1_epi8(0x0F));
    if constexpr (kHasQh<Block>) {
      // Bit j of qh is bit 4 of element j's code: one mask bit per byte of the chunk.
      uint32_t h0, h1 = 0;
      std::memcpy(&h0, b[0].qh, 4);
      if constexpr (kPair) std::memcpy(&h1, b[1].qh, 4);
      const __mmask64 fifth = static_cast<__mmask64>(h0) | (static_cast<__mmask64>(h1) << 32);
      v = _mm512_mask_add_epi8(v, fifth, v, _mm512_set1_epi8(0x10));
    }
    return v;
  }
}

// The packed row's 16 lane scales of the chunk: d of b[0] in lanes 0..7, of b[1]
// (0 without kPair) in lanes 8..15. F16 -> F32 is exact, as in the packer.
template <typename Block, bool kPair>
inline __m512 lane_scales(const Block* b) {
  const short d1 = kPair ? static_cast<short>(b[1].d) : 0;
  return _mm512_cvtph_ps(
      _mm256_set_m128i(_mm_set1_epi16(d1), _mm_set1_epi16(static_cast<short>(b[0].d))));
}

// Σ_g min[g] · x_sum[g] over the packed row's groups of 16 (np / 16 of them; a block's m is
// the min of both its groups, the padding's is 0), as gemm_int8's min correction sums it.
template <typename Block>
inline float min_term(const Block* blocks, int64_t nb, const float* x_sum) {
  const int64_t groups = (nb + 1) / 2 * 4;
  const auto* m0 = reinterpret_cast<const char*>(&blocks[0].m);
  // Group i of 16 reads the dword at its block's m: m in the low half (the rest masked off).
  const __m512i group_block =
      _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
  __m512 acc = _mm512_setzero_ps();
  int64_t g = 0;
  for (; g + 16 <= groups; g += 16) {
    const __m512i block = _mm512_add_epi32(group_block, _mm512_set1_epi32(static_cast<int>(g / 2)));
    // Groups past the row's last block are padding (min 0); they are not read.
    const __mmask16 real = _mm512_cmplt_epi32_mask(block, _mm512_set1_epi32(static_cast<int>(nb)));
    const __m512i words = _mm512_mask_i32gather_epi32(
        _mm512_setzero_si512(), real,
        _mm512_mullo_epi32(block, _mm512_set1_epi32(static_cast<int>(sizeof(Block)))), m0, 1);
    const __m512 mins = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
    acc = _mm512_fmadd_ps(mins, _mm512_loadu_ps(x_sum + g), acc);
  }
  float sum = hsum(acc);
  for (; g < groups; ++g) sum += (g / 2 < nb ? _cvtsh_ss(blocks[g / 2].m) : 0.0f) * x_sum[g];
  return sum;
}

// One 64-element chunk c of a weight row against T activation rows.
template <typename Block, bool kPair, int T>
inline void chunk(__m512 (&acc)[T], const PackedActRow* x, const Block* blocks, int64_t c) {
  const __m512i u = codes<Block, kPair>(blocks + 2 * c);
  const __m512 ws = lane_scales<Block, kPair>(blocks + 2 * c);
  for (int t = 0; t < T; ++t) {
    const __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(x[t].start + 16 * c), u,
                                            _mm512_loadu_si512(x[t].q + 64 * c));
    const __m512 scale = _mm512_mul_ps(ws, _mm512_loadu_ps(x[t].scale + 16 * c));
    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[t]);
  }
}

// y[t * ldy + o] for weight rows o < n_rows, nb blocks each. One row at a time, so the
// weights are read as one sequential stream (two rows in flight together measured
// slower from DRAM); a prefetch a few cache lines ahead of every chunk keeps that
// stream's loads in flight across row ends, which the prefetch of a whole row ahead
// (AVX2's) did less well for Q8_0 here.
template <typename Block, int T>
void rows_of(float* y, int64_t ldy, const PackedActRow* x, const uint8_t* w, size_t w_stride,
             int64_t n_rows, int64_t nb) {
  for (int64_t o = 0; o < n_rows; ++o) {
    const Block* blocks = reinterpret_cast<const Block*>(w + o * w_stride);
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    const int64_t pairs = nb / 2;
    for (int64_t c = 0; c < pairs; ++c) {
      // Past the matrix's end this touches bytes it does not use; prefetches never fault.
      const char* ahead = reinterpret_cast<const char*>(blocks + 2 * c) + kPrefetchBytes;
      _mm_prefetch(ahead, _MM_HINT_T0);
      if constexpr (2 * sizeof(Block) > 64) _mm_prefetch(ahead + 64, _MM_HINT_T0);
      const char* far = reinterpret_cast<const char*>(blocks + 2 * c) + kFarPrefetchBytes;
      _mm_prefetch(far, _MM_HINT_T1);
      if constexpr (2 * sizeof(Block) > 64) _mm_prefetch(far + 64, _MM_HINT_T1);
      chunk<Block, true, T>(acc, x, blocks, c);
    }
    if (nb % 2) chunk<Block, false, T>(acc, x, blocks, pairs);
    for (int t = 0; t < T; ++t) {
      float v = hsum(acc[t]);
      if constexpr (kHasMin<Block>) v += min_term(blocks, nb, x[t].sum);
      y[t * ldy + o] = v;
    }
  }
}

// Q4_K: a super-block of 256 is 4 chunks of 64 (the low nibbles of qs[32c..32c+32), then
// their high nibbles: sub-blocks 2c and 2c+1), lane scales d·sc of the two sub-blocks, and
// the min correction's 16 groups −dmin·m, one vector per super-block against x.sum (the
// packed path's groups of 16 vectors coincide with the super-blocks, so its sums match).
template <int T>
void rows_q4_k(float* y, int64_t ldy, const PackedActRow* x, const uint8_t* w, size_t w_stride,
               int64_t n_rows, int64_t n_super) {
  const __m256i low = _mm256_set1_epi8(0xF);
  for (int64_t o = 0; o < n_rows; ++o) {
    const auto* blocks = reinterpret_cast<const quant::BlockQ4_K*>(w + o * w_stride);
    __m512 acc[T], acc_min[T];
    for (int t = 0; t < T; ++t) acc[t] = acc_min[t] = _mm512_setzero_ps();
    for (int64_t s = 0; s < n_super; ++s) {
      const quant::BlockQ4_K& b = blocks[s];
      const char* near = reinterpret_cast<const char*>(&b) + kPrefetchBytes;
      const char* far = reinterpret_cast<const char*>(&b) + kFarPrefetchBytes;
      for (int line = 0; line < 3; ++line) {
        _mm_prefetch(near + 64 * line, _MM_HINT_T0);
        _mm_prefetch(far + 64 * line, _MM_HINT_T1);
      }
      float sc[8];
      alignas(64) float mins[16];
      q4_k_scales(b, _cvtsh_ss(b.d), _cvtsh_ss(b.dmin), sc, mins);
      for (int c = 0; c < 4; ++c) {
        const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * c));
        const __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(bytes, low)),
                                             _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low), 1);
        const __m512 ws =
            _mm512_insertf32x8(_mm512_set1_ps(sc[2 * c]), _mm256_set1_ps(sc[2 * c + 1]), 1);
        const int64_t chunk = 4 * s + c;
        for (int t = 0; t < T; ++t) {
          const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u,
                                                  _mm512_loadu_si512(x[t].q + 64 * chunk));
          const __m512 scale = _mm512_mul_ps(ws, _mm512_loadu_ps(x[t].scale + 16 * chunk));
          acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[t]);
        }
      }
      const __m512 min_vec = _mm512_load_ps(mins);
      for (int t = 0; t < T; ++t)
        acc_min[t] = _mm512_fmadd_ps(min_vec, _mm512_loadu_ps(x[t].sum + 16 * s), acc_min[t]);
    }
    for (int t = 0; t < T; ++t) {
      float v = hsum(acc[t]);
      v += hsum(acc_min[t]);
      y[t * ldy + o] = v;
    }
  }
}

// Q6_K (zero point 32, a scale per 16 elements): chunk c of a super-block is the packed row's
// codes of half c / 2 (ql's low nibbles for an even c, high for an odd one, with two bits of
// qh each), 4 scales d·sc of its groups of 16 on 4 lanes each, and x.start's −32·Σq as the
// vpdpbusd start, as the packed path does.
template <int T>
void rows_q6_k(float* y, int64_t ldy, const PackedActRow* x, const uint8_t* w, size_t w_stride,
               int64_t n_rows, int64_t n_super) {
  const __m512i quad = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (int64_t o = 0; o < n_rows; ++o) {
    const auto* blocks = reinterpret_cast<const quant::BlockQ6_K*>(w + o * w_stride);
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t s = 0; s < n_super; ++s) {
      const quant::BlockQ6_K& b = blocks[s];
      const char* near = reinterpret_cast<const char*>(&b) + kPrefetchBytes;
      const char* far = reinterpret_cast<const char*>(&b) + kFarPrefetchBytes;
      for (int line = 0; line < 4; ++line) {
        _mm_prefetch(near + 64 * line, _MM_HINT_T0);
        _mm_prefetch(far + 64 * line, _MM_HINT_T1);
      }
      alignas(16) float group_scale[16];
      q6_k_scales(b, _cvtsh_ss(b.d), group_scale);
      for (int half = 0; half < 2; ++half) {
        const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * half));
        const __m256i ql1 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * half + 32));
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * half));
        for (int odd = 0; odd < 2; ++odd) {
          const __m256i first = q6_k_codes(ql0, ql1, h, 2 * odd);
          const __m256i second = q6_k_codes(ql0, ql1, h, 2 * odd + 1);
          const __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
          const int c = 2 * half + odd;
          const __m512 ws =
              _mm512_permutexvar_ps(quad, _mm512_castps128_ps512(_mm_load_ps(group_scale + 4 * c)));
          const int64_t chunk = 4 * s + c;
          for (int t = 0; t < T; ++t) {
            const __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(x[t].start + 16 * chunk), u,
                                                    _mm512_loadu_si512(x[t].q + 64 * chunk));
            const __m512 scale = _mm512_mul_ps(ws, _mm512_loadu_ps(x[t].scale + 16 * chunk));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[t]);
          }
        }
      }
    }
    for (int t = 0; t < T; ++t) y[t * ldy + o] = hsum(acc[t]);
  }
}

}  // namespace

bool gemm_blocks(float* y, int64_t ldy, const PackedActRow* x, int64_t T, const void* w,
                 size_t w_stride, int64_t n_rows, int64_t n, DType type) {
  if (T < 1 || T > kMaxT) return false;
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t nb = n / 32;
  switch (type) {
    case DType::Q8_0:
      with_row_count(T, [&](auto rows) {
        rows_of<quant::BlockQ8_0, decltype(rows)::value>(y, ldy, x, wb, w_stride, n_rows, nb);
      });
      return true;
    case DType::Q4_0:
      with_row_count(T, [&](auto rows) {
        rows_of<quant::BlockQ4_0, decltype(rows)::value>(y, ldy, x, wb, w_stride, n_rows, nb);
      });
      return true;
    case DType::Q5_0:
      with_row_count(T, [&](auto rows) {
        rows_of<quant::BlockQ5_0, decltype(rows)::value>(y, ldy, x, wb, w_stride, n_rows, nb);
      });
      return true;
    case DType::Q4_1:
      with_row_count(T, [&](auto rows) {
        rows_of<quant::BlockQ4_1, decltype(rows)::value>(y, ldy, x, wb, w_stride, n_rows, nb);
      });
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
    case DType::Q5_1:
      with_row_count(T, [&](auto rows) {
        rows_of<quant::BlockQ5_1, decltype(rows)::value>(y, ldy, x, wb, w_stride, n_rows, nb);
      });
      return true;
    default:
      return false;
  }
}

}  // namespace toy::cpu::avx512
