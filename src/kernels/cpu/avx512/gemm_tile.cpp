// The training GEMM's BF16 block on AMX tile registers (cpu/backend.h, gemm_tile_bf16):
// a 32 × 32 block of C in four 16 × 16 F32 tiles, A as two 16-row tiles of 16 BF16 pairs,
// B as two 16-pair tiles of 16 columns. One tdpbf16ps does 16 × 16 × 32 multiply-adds, 16
// times what a vdpbf16ps does, so a block costs a fraction of gemm_micro_bf16's time.
#include <immintrin.h>

#include <cstring>

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

// Tiles 0-3: C (rows 0-15 / 16-31 × columns 0-15 / 16-31); 4, 5: A rows 0-15, 16-31;
// 6, 7: B columns 0-15, 16-31. Every tile is 16 rows of 64 bytes.
TileConfig make_config() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.bytes_per_row[t] = 64;
    config.rows[t] = 16;
  }
  return config;
}

// The tile configuration is per thread (saved and restored with the thread's state), and
// nothing else in toy configures tiles: loading it once per thread suffices.
thread_local bool tls_configured = false;

void configure_tiles() {
  if (tls_configured) return;
  static const TileConfig config = make_config();
  _tile_loadconfig(&config);
  tls_configured = true;
}

}  // namespace

void gemm_tile_bf16(int64_t kp, const uint32_t* a, int64_t lda, const uint32_t* b, float* c,
                    int64_t ldc, int64_t m_valid, int64_t n_valid, bool overwrite) {
  static_assert(kTileRows == 32 && kTilePairs == 16 && kGemmNR == 32);
  configure_tiles();
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const int64_t a_stride = lda * 4;  // bytes
  const int64_t b_stride = kGemmNR * 4;
  for (int64_t p = 0; p < kp; p += kTilePairs) {
    _tile_loadd(4, a + p, a_stride);
    _tile_loadd(5, a + 16 * lda + p, a_stride);
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
  for (int64_t i = 0; i < m_valid; ++i) {
    const float* src = block + i * 32;
    float* dst = c + i * ldc;
    const __mmask16 lo = n_valid >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n_valid) - 1);
    const __mmask16 hi = n_valid >= 32   ? 0xFFFF
                         : n_valid <= 16 ? 0
                                         : static_cast<__mmask16>((1u << (n_valid - 16)) - 1);
    __m512 s0 = _mm512_load_ps(src), s1 = _mm512_load_ps(src + 16);
    if (!overwrite) {
      s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(lo, dst));
      s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(hi, dst + 16));
    }
    _mm512_mask_storeu_ps(dst, lo, s0);
    _mm512_mask_storeu_ps(dst + 16, hi, s1);
  }
}

}  // namespace toy::cpu::avx512
