// The BF16 training GEMM's transposing pack (kernels/linear_backward.cpp): `width` rows
// of contiguous k, rounded to BF16 and stored as gemm_micro_bf16's pairs of k, k-major.
// A row's 16 floats become 8 pair words in one register; eight rows' words are then
// transposed in registers. Rounding is to nearest even in integer arithmetic, bit for bit
// the portable pack's (vcvtne2ps2bf16 would flush denormals).
#include "kernels/cpu/avx512/simd.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx512 {
namespace {

// 16 floats → 8 words, word p = bf16(x[2p]) | bf16(x[2p+1]) << 16.
inline __m256i bf16_pairs(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
}

// Rows w[0..8) of 8 words become columns: afterwards w[j][i] is what w[i][j] was.
inline void transpose8(__m256i w[8]) {
  const __m256i t0 = _mm256_unpacklo_epi32(w[0], w[1]), t1 = _mm256_unpackhi_epi32(w[0], w[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(w[2], w[3]), t3 = _mm256_unpackhi_epi32(w[2], w[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(w[4], w[5]), t5 = _mm256_unpackhi_epi32(w[4], w[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(w[6], w[7]), t7 = _mm256_unpackhi_epi32(w[6], w[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  w[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  w[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  w[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  w[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  w[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  w[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  w[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  w[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

}  // namespace

void pack_rows_bf16(uint32_t* pairs, const float* src, int64_t stride, int64_t valid, int64_t width,
                    int64_t kc) {
  for (int64_t i0 = 0; i0 < width; i0 += 8) {
    const float* rows[8];
    for (int64_t r = 0; r < 8; ++r) rows[r] = i0 + r < valid ? src + (i0 + r) * stride : nullptr;
    // 16 k (8 pairs) per pass; the last pass loads its k < kc under a mask (zeros past it,
    // so an odd kc's last pair has a zero high half) and stores only the pairs it holds.
    for (int64_t k = 0; k < kc; k += 16) {
      const int64_t left = kc - k;
      const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
      __m256i w[8];
      for (int r = 0; r < 8; ++r)
        w[r] =
            rows[r] ? bf16_pairs(_mm512_maskz_loadu_ps(mask, rows[r] + k)) : _mm256_setzero_si256();
      transpose8(w);
      const int64_t n_pairs = left >= 16 ? 8 : (left + 1) / 2;
      uint32_t* out = pairs + k / 2 * width + i0;
      for (int64_t q = 0; q < n_pairs; ++q)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + q * width), w[q]);
    }
  }
}

}  // namespace toy::cpu::avx512
