// Dequantization of the block types a frozen base is most often stored in (Q4_0, Q4_1,
// Q8_0), 16 values per instruction. Training dequantizes every base weight twice per step
// (forward and input gradient), which the scalar rows spent 8 % of a LoRA step on.
// Bit-identical to quant/dequantize.cpp: the same single-precision multiply, then add, never
// fused (this file is compiled in ISO C++ mode, so GCC does not contract them).
#include <immintrin.h>

#include "kernels/cpu/backend.h"
#include "quant/blocks.h"

namespace toy::cpu::avx512 {
namespace {

__m512 scale_of(uint16_t h) {
  return _mm512_set1_ps(_cvtsh_ss(h));
}

// The 32 four-bit values of a Q4 block, low nibbles (elements 0..15) then high (16..31),
// as int32 lanes.
void unpack_nibbles(const uint8_t* qs, __m512i* low, __m512i* high) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0F);
  *low = _mm512_cvtepu8_epi32(_mm_and_si128(bytes, mask));
  *high = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask));
}

}  // namespace

bool dequantize_row(DType type, const void* row, float* y, int64_t n) {
  switch (type) {
    case DType::Q4_0: {
      const auto* x = static_cast<const quant::BlockQ4_0*>(row);
      const __m512i eight = _mm512_set1_epi32(8);
      for (int64_t b = 0; b < n / quant::kQK4_0; ++b, y += quant::kQK4_0) {
        const __m512 d = scale_of(x[b].d);
        __m512i low, high;
        unpack_nibbles(x[b].qs, &low, &high);
        _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(low, eight)), d));
        _mm512_storeu_ps(y + 16,
                         _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(high, eight)), d));
      }
      return true;
    }
    case DType::Q4_1: {
      const auto* x = static_cast<const quant::BlockQ4_1*>(row);
      for (int64_t b = 0; b < n / quant::kQK4_1; ++b, y += quant::kQK4_1) {
        const __m512 d = scale_of(x[b].d), m = scale_of(x[b].m);
        __m512i low, high;
        unpack_nibbles(x[b].qs, &low, &high);
        _mm512_storeu_ps(y, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(low), d), m));
        _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(high), d), m));
      }
      return true;
    }
    case DType::Q8_0: {
      const auto* x = static_cast<const quant::BlockQ8_0*>(row);
      for (int64_t b = 0; b < n / quant::kQK8_0; ++b, y += quant::kQK8_0) {
        const __m512 d = scale_of(x[b].d);
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs));
        const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 16));
        _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d));
      }
      return true;
    }
    default:
      return false;
  }
}

}  // namespace toy::cpu::avx512
