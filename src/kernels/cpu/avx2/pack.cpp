// AVX2 packing of weight rows and activation rows into the layout of
// quant/dot_pack.h, bit for bit what the portable packers write. Types without a
// SIMD packer here (Q2_K, Q3_K, Q5_K) use the portable one.
#include <cstring>

#include "kernels/cpu/avx2/simd.h"
#include "kernels/cpu/backend.h"
#include "kernels/cpu/k_quant_scales.h"
#include "kernels/cpu/x86_q6_k_codes.h"
#include "quant/blocks.h"

namespace toy::cpu::avx2 {
namespace {

using quant::PackedActRow;
using quant::PackedWeightRow;

inline float half_to_float(uint16_t h) {
  return _cvtsh_ss(h);
}

// 16 bytes of nibbles -> 32 codes: low nibbles (elements 0..15), then high (16..31).
inline __m256i nibble_codes(const uint8_t* qs) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0xF);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask),
                          _mm_and_si128(bytes, mask));
}

// Sets bit 4 of code j where bit j of the 32-bit qh is set: byte j of a
// broadcast picks byte j/8 of qh, then tests bit j%8.
inline __m256i with_fifth_bits(__m256i codes, const uint8_t qh[4]) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                           2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_or_si256(codes, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
}

template <typename Block, bool kFifthBit, bool kMin>
void pack_legacy(const Block* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    __m256i codes = nibble_codes(b[i].qs);
    if constexpr (kFifthBit) codes = with_fifth_bits(codes, b[i].qh);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.u + i * 32), codes);
    _mm256_storeu_ps(out.scale + i * 8, _mm256_set1_ps(half_to_float(b[i].d)));
    if constexpr (kMin) {
      const float m = half_to_float(b[i].m);
      out.min[2 * i] = m;
      out.min[2 * i + 1] = m;
    }
  }
}

void pack_q8_0(const quant::BlockQ8_0* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    // u = q + 128 (flip the sign bit); 32 bytes at once.
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.u + i * 32),
                        _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80))));
    _mm256_storeu_ps(out.scale + i * 8, _mm256_set1_ps(half_to_float(b[i].d)));
  }
}

void pack_q4_k(const quant::BlockQ4_K* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* u = out.u + i * 256;
    // Chunk c of 64: low nibbles of qs[32c..32c+32) then their high nibbles.
    for (int c = 0; c < 4; ++c) {
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs + 32 * c));
      const __m256i mask = _mm256_set1_epi8(0xF);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * c), _mm256_and_si256(bytes, mask));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * c + 32),
                          _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask));
    }
    // quant::fill_q4_k_scales's values, with F16C and whole-vector stores: d·sc of
    // sub-block j on its 8 lanes and −dmin·m on its 2 groups.
    float sc[8], mins[16];
    q4_k_scales(b[i], half_to_float(b[i].d), half_to_float(b[i].dmin), sc, mins);
    for (int j = 0; j < 8; ++j) _mm256_storeu_ps(out.scale + i * 64 + 8 * j, _mm256_set1_ps(sc[j]));
    std::memcpy(out.min + i * 16, mins, sizeof(mins));
  }
}

void pack_q6_k(const quant::BlockQ6_K* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d);
    uint8_t* u = out.u + i * 256;
    // Element 128*half + 32*k + l: a nibble of ql (low for k = 0, 1; high for 2, 3)
    // and bits 2k..2k+1 of qh[l] as its top two bits.
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b[i].ql + 64 * half;
      const uint8_t* qh = b[i].qh + 32 * half;
      uint8_t* e = u + 128 * half;
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      for (int k = 0; k < 4; ++k)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(e + 32 * k), q6_k_codes(ql0, ql1, h, k));
    }
    float group_scale[16];
    q6_k_scales(b[i], d, group_scale);
    for (int g = 0; g < 16; ++g)
      _mm_storeu_ps(out.scale + i * 64 + g * 4, _mm_set1_ps(group_scale[g]));
  }
}

// 16 int32 (two registers) -> 16 int8 with signed saturation, in order.
inline __m128i narrow16(__m256i a, __m256i b) {
  const __m256i words = _mm256_packs_epi32(a, b);                 // a0-3 b0-3 | a4-7 b4-7
  const __m256i ordered = _mm256_permute4x64_epi64(words, 0xD8);  // a0-7 b0-7
  return _mm_packs_epi16(_mm256_castsi256_si128(ordered), _mm256_extracti128_si256(ordered, 1));
}

int quantize_block32(const float* x, int8_t* q, float* d_out) {
  __m256 v[4];
  for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(x + 8 * j);
  const __m256 a = _mm256_max_ps(_mm256_max_ps(abs_ps(v[0]), abs_ps(v[1])),
                                 _mm256_max_ps(abs_ps(v[2]), abs_ps(v[3])));
  const float amax = hmax(a);
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  __m256i c[4];
  for (int j = 0; j < 4; ++j) c[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], _mm256_set1_ps(id)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), narrow16(c[0], c[1]));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), narrow16(c[2], c[3]));
  *d_out = amax / 127.0f;
  return hsum(_mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3])));
}

void quantize_block256(const float* x, int8_t* q, float* d_out, int sums[16]) {
  __m256 a = _mm256_setzero_ps();
  for (int j = 0; j < 256; j += 8) a = _mm256_max_ps(a, abs_ps(_mm256_loadu_ps(x + j)));
  const float amax = hmax(a);
  if (amax == 0.0f) {
    std::memset(q, 0, 256);
    for (int g = 0; g < 16; ++g) sums[g] = 0;
    *d_out = 0.0f;
    return;
  }
  float max = 0.0f;  // the first value of largest magnitude, with its sign
  for (int j = 0; j < 256; j += 8) {
    const int hit = _mm256_movemask_ps(
        _mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
    if (hit) {
      max = x[j + __builtin_ctz(static_cast<unsigned>(hit))];
      break;
    }
  }
  const float iscale = -127.0f / max;
  const __m256 s = _mm256_set1_ps(iscale);
  const __m256i cap = _mm256_set1_epi32(127);
  for (int g = 0; g < 16; ++g) {
    const __m256i lo =
        _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * g), s)), cap);
    const __m256i hi = _mm256_min_epi32(
        _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * g + 8), s)), cap);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * g), narrow16(lo, hi));
    sums[g] = hsum(_mm256_add_epi32(lo, hi));
  }
  *d_out = 1.0f / iscale;
}

}  // namespace

void pack_weight_row(DType type, const void* row, int64_t n, const PackedWeightRow& out) {
  const int64_t nb = n / dtype_info(type).block_size;
  switch (type) {
    case DType::Q4_0:
      pack_legacy<quant::BlockQ4_0, false, false>(static_cast<const quant::BlockQ4_0*>(row), nb,
                                                  out);
      break;
    case DType::Q4_1:
      pack_legacy<quant::BlockQ4_1, false, true>(static_cast<const quant::BlockQ4_1*>(row), nb,
                                                 out);
      break;
    case DType::Q5_0:
      pack_legacy<quant::BlockQ5_0, true, false>(static_cast<const quant::BlockQ5_0*>(row), nb,
                                                 out);
      break;
    case DType::Q5_1:
      pack_legacy<quant::BlockQ5_1, true, true>(static_cast<const quant::BlockQ5_1*>(row), nb, out);
      break;
    case DType::Q8_0:
      pack_q8_0(static_cast<const quant::BlockQ8_0*>(row), nb, out);
      break;
    case DType::Q4_K:
      pack_q4_k(static_cast<const quant::BlockQ4_K*>(row), nb, out);
      break;
    case DType::Q6_K:
      pack_q6_k(static_cast<const quant::BlockQ6_K*>(row), nb, out);
      break;
    default:
      quant::pack_weight_row(type, row, n, out);
      return;
  }
  quant::pad_weight_row(type, n, out);
}

void pack_activation_row(DType weight_type, const float* x, int64_t n, const PackedActRow& out) {
  quant::pack_activation_row_using({quantize_block32, quantize_block256}, weight_type, x, n, out);
}

}  // namespace toy::cpu::avx2
