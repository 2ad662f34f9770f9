// The 6-bit codes of a Q6_K super-block half as 32 bytes, shared by the AVX2 and AVX-512
// packers and direct-block kernels (both extract them 256 bits at a time). Internal
// linkage and always inlined, as k_quant_scales.h, so each backend compiles its own copy
// with its own flags.
#pragma once

#include <immintrin.h>

namespace toy::cpu {

// Elements 32k..32k+32 of a half of 128 (k = 0..3): a nibble of ql (the low nibbles of
// ql0 = ql[0..32) for k = 0, of ql1 = ql[32..64) for k = 1, their high nibbles for k = 2,
// 3) with bits 2k..2k+1 of each qh byte h on top (bits 4..5).
[[gnu::always_inline]] static inline __m256i q6_k_codes(__m256i ql0, __m256i ql1, __m256i h,
                                                        int k) {
  const __m256i low = _mm256_set1_epi8(0xF), two = _mm256_set1_epi8(3);
  const __m256i ql = (k & 1) ? ql1 : ql0;
  const __m256i nibble = k < 2 ? ql : _mm256_srli_epi16(ql, 4);
  const __m256i top = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * k), two), 4);
  return _mm256_or_si256(_mm256_and_si256(nibble, low), top);
}

}  // namespace toy::cpu
