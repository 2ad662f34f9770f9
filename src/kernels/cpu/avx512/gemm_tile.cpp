// The training GEMM's BF16 block on AMX tile registers (cpu/backend.h, gemm_tile_bf16):
// a 32 × 32 block of C in four 16 × 16 F32 tiles, A as two 16-row tiles of 16 BF16 pairs,
// B as two 16-pair tiles of 16 columns. One tdpbf16ps does 16 × 16 × 32 multiply-adds, 16
// times what a vdpbf16ps does, so a block costs a fraction of gemm_micro_bf16's time.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/avx512/simd.h"
#include "kernels/cpu/avx512/tiles.h"
#include "kernels/cpu/backend.h"

namespace toy::cpu::avx512 {
namespace {

// The 64-byte operand of ldtilecfg (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

TileConfig make_config(TileShapes shapes) {
  TileConfig config;
  if (shapes == TileShapes::Bf16Gemm) {
    // Tiles 0-3: C (rows 0-15 / 16-31 × columns 0-15 / 16-31); 4, 5: A rows 0-15, 16-31;
    // 6, 7: B columns 0-15, 16-31.
    for (int t = 0; t < 8; ++t) {
      config.bytes_per_row[t] = 64;
      config.rows[t] = 16;
    }
    return config;
  }
  for (int t = 0; t < 6; ++t) {
    config.bytes_per_row[t] = t == 2 || t == 3 ? 32 : 64;
    config.rows[t] = t >= 4 ? 8 : 16;
  }
  return config;
}

// The configuration this thread has loaded, if any (nothing else in toy configures tiles).
thread_local bool tls_configured = false;
thread_local TileShapes tls_shapes = TileShapes::Bf16Gemm;

}  // namespace

void use_tile_shapes(TileShapes shapes) {
  if (tls_configured && tls_shapes == shapes) return;
  static const TileConfig bf16 = make_config(TileShapes::Bf16Gemm);
  static const TileConfig int8 = make_config(TileShapes::Int8Gemm);
  _tile_loadconfig(shapes == TileShapes::Bf16Gemm ? &bf16 : &int8);
  tls_configured = true;
  tls_shapes = shapes;
}

void gemm_tile_bf16(int64_t kp, const uint32_t* a, int64_t lda, const uint32_t* b, float* c,
                    int64_t ldc, int64_t m_valid, int64_t n_valid, bool overwrite) {
  static_assert(kTileRows == 32 && kTilePairs == 16 && kGemmNR == 32);
  use_tile_shapes(TileShapes::Bf16Gemm);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  // A is stored tile by tile (backend.h): each 16 × 16-pair tile is 1 KiB, contiguous.
  const int64_t a_stride = kTilePairs * 4;  // bytes per tile row
  const int64_t b_stride = kGemmNR * 4;
  for (int64_t p = 0; p < kp; p += kTilePairs) {
    _tile_loadd(4, a + p * 16, a_stride);
    _tile_loadd(5, a + 16 * lda + p * 16, a_stride);
    _tile_loadd(6, b + p * kGemmNR, b_stride);
    _tile_loadd(7, b + p * kGemmNR + 16, b_stride);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  // The products always start from zero and are then added to C, so an element's result
  // does not depend on whether its block is whole or cut at an edge.
  alignas(64) float block[32 * 32];
  _tile_stored(0, block, 32 * 4);
  _tile_stored(1, block + 16, 32 * 4);
  _tile_stored(2, block + 16 * 32, 32 * 4);
  _tile_stored(3, block + 16 * 32 + 16, 32 * 4);
  const __mmask16 lo = tail_mask(n_valid), hi = tail_mask(n_valid - 16);
  for (int64_t i = 0; i < m_valid; ++i) {
    const float* src = block + i * 32;
    float* dst = c + i * ldc;
    __m512 s0 = _mm512_load_ps(src), s1 = _mm512_load_ps(src + 16);
    if (!overwrite) {
      s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(lo, dst));
      s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(hi, dst + 16));
    }
    _mm512_mask_storeu_ps(dst, lo, s0);
    _mm512_mask_storeu_ps(dst + 16, hi, s1);
  }
}

void pack_tile_rows(uint32_t* rows, int64_t ld, const float* src, int64_t row_stride,
                    int64_t col_stride, int64_t count, int64_t padded_rows, int64_t kc) {
  if (col_stride == 1) {
    // Each row's k is contiguous: 32 floats → 32 BF16 (= 16 pairs) per conversion, one tile
    // row, whose zero-masked loads fill a last partial chunk with zeros. When ld holds just
    // those chunks (the GEMM's case), only the padding rows' blocks need clearing first.
    const int64_t cleared_from = ld == (kc + 31) / 32 * kTilePairs ? count / 16 * 16 : 0;
    std::memset(rows + cleared_from * ld, 0,
                static_cast<size_t>((padded_rows - cleared_from) * ld) * sizeof(uint32_t));
    for (int64_t i = 0; i < count; ++i) {
      const float* row = src + i * row_stride;
      uint32_t* block = rows + (i / 16) * 16 * ld + (i % 16) * 16;
      for (int64_t k = 0; k < kc; k += 32) {
        auto* dst = reinterpret_cast<uint16_t*>(block + k / 32 * 256);
        const int64_t n = kc - k < 32 ? kc - k : 32;
        const __m512bh bf =
            _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(tail_mask(n - 16), row + k + 16),
                                _mm512_maskz_loadu_ps(tail_mask(n), row + k));
        _mm512_storeu_si512(dst, (__m512i)bf);
      }
    }
    return;
  }
  std::memset(rows, 0, static_cast<size_t>(padded_rows * ld) * sizeof(uint32_t));
  if (row_stride == 1) {
    // k strided, rows contiguous (a transposed operand): 16 rows at a time, two k per step
    // become one pair per row, scattered to the 16 rows.
    const __m512i interleave =
        _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i offsets =
        _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                           _mm512_set1_epi32(16));
    for (int64_t i0 = 0; i0 < count; i0 += 16) {
      const int64_t n = count - i0 < 16 ? count - i0 : 16;
      const __mmask16 live = tail_mask(n);
      for (int64_t p = 0; p < (kc + 1) / 2; ++p) {
        const float* k0 = src + i0 + 2 * p * col_stride;
        const __m512 even = _mm512_maskz_loadu_ps(live, k0);
        const __m512 odd =
            2 * p + 1 < kc ? _mm512_maskz_loadu_ps(live, k0 + col_stride) : _mm512_setzero_ps();
        const __m512i pairs =
            _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(odd, even));
        _mm512_mask_i32scatter_epi32(rows + i0 * ld + p / 16 * 256 + p % 16, live, offsets, pairs,
                                     4);
      }
    }
    return;
  }
  auto* halves = reinterpret_cast<uint16_t*>(rows);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t k = 0; k < kc; ++k) {
      float f = src[i * row_stride + k * col_stride];
      uint32_t bits;
      std::memcpy(&bits, &f, sizeof(bits));
      const int64_t word = (i / 16) * 16 * ld + (k / 32) * 256 + (i % 16) * 16 + (k / 2) % 16;
      halves[2 * word + k % 2] =
          static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }
}

}  // namespace toy::cpu::avx512
