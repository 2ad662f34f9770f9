// NEON elementwise loops (exp, F16 widening, SwiGLU backward) and the training
// GEMM micro-kernel.
#include "kernels/cpu/backend.h"
#include "kernels/cpu/neon/simd.h"

namespace toy::cpu::neon {

void exp_shifted(float* y, const float* x, float shift, int64_t n) {
  const float32x4_t s = vdupq_n_f32(shift);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, exp_ps(vsubq_f32(vld1q_f32(x + i), s)));
  if (i < n) store_partial(y + i, exp_ps(vsubq_f32(load_partial(x + i, n - i), s)), n - i);
}

void f16_to_f32_row(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(src + i));
    vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(dst + i + 4, vcvt_high_f32_f16(h));
  }
  for (; i < n; ++i) dst[i] = half_to_float(src[i]);
}

void swiglu(float* h, const float* g, const float* u, int64_t n) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  for (int64_t i = 0; i < n; i += 4) {
    const int64_t m = n - i;  // valid elements, >= 4 except in the tail
    const bool full = m >= 4;
    const float32x4_t gi = full ? vld1q_f32(g + i) : load_partial(g + i, m);
    const float32x4_t ui = full ? vld1q_f32(u + i) : load_partial(u + i, m);
    const float32x4_t sigmoid = vdivq_f32(one, vaddq_f32(one, exp_ps(vnegq_f32(gi))));
    const float32x4_t hi = vmulq_f32(vmulq_f32(gi, sigmoid), ui);
    if (full) {
      vst1q_f32(h + i, hi);
    } else {
      store_partial(h + i, hi, m);
    }
  }
}

void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u,
                     int64_t n) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  for (int64_t i = 0; i < n; i += 4) {
    const int64_t m = n - i;  // valid elements, >= 4 except in the tail
    const bool full = m >= 4;
    const float32x4_t gi = full ? vld1q_f32(g + i) : load_partial(g + i, m);
    const float32x4_t ui = full ? vld1q_f32(u + i) : load_partial(u + i, m);
    const float32x4_t dhi = full ? vld1q_f32(dh + i) : load_partial(dh + i, m);
    const float32x4_t dui = full ? vld1q_f32(du + i) : load_partial(du + i, m);
    const float32x4_t dgi = full ? vld1q_f32(dg + i) : load_partial(dg + i, m);
    const float32x4_t sigmoid = vdivq_f32(one, vaddq_f32(one, exp_ps(vnegq_f32(gi))));
    const float32x4_t silu = vmulq_f32(gi, sigmoid);
    // σ·(1 + g·(1 − σ)) = σ + silu·(1 − σ)
    const float32x4_t dsilu = vfmaq_f32(sigmoid, silu, vsubq_f32(one, sigmoid));
    const float32x4_t du_new = vfmaq_f32(dui, dhi, silu);
    const float32x4_t dg_new = vfmaq_f32(dgi, vmulq_f32(dhi, ui), dsilu);
    if (full) {
      vst1q_f32(du + i, du_new);
      vst1q_f32(dg + i, dg_new);
    } else {
      store_partial(du + i, du_new, m);
      store_partial(dg + i, dg_new, m);
    }
  }
}

namespace {

// One 8-row × 8-column block of the tile: 16 accumulators, each k step loads the
// 8 values of a (2 registers) and 8 of b, and multiplies by lane.
inline void micro_8x8(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                      int64_t m_valid, int64_t n_valid, bool overwrite) {
  float32x4_t acc[8][2];
  for (int i = 0; i < 8; ++i) acc[i][0] = acc[i][1] = vdupq_n_f32(0.0f);
  for (int64_t k = 0; k < kc; ++k) {
    const float32x4_t a0 = vld1q_f32(a + k * kGemmMR), a1 = vld1q_f32(a + k * kGemmMR + 4);
    const float32x4_t b0 = vld1q_f32(b + k * kGemmNR), b1 = vld1q_f32(b + k * kGemmNR + 4);
    acc[0][0] = vfmaq_laneq_f32(acc[0][0], b0, a0, 0);
    acc[0][1] = vfmaq_laneq_f32(acc[0][1], b1, a0, 0);
    acc[1][0] = vfmaq_laneq_f32(acc[1][0], b0, a0, 1);
    acc[1][1] = vfmaq_laneq_f32(acc[1][1], b1, a0, 1);
    acc[2][0] = vfmaq_laneq_f32(acc[2][0], b0, a0, 2);
    acc[2][1] = vfmaq_laneq_f32(acc[2][1], b1, a0, 2);
    acc[3][0] = vfmaq_laneq_f32(acc[3][0], b0, a0, 3);
    acc[3][1] = vfmaq_laneq_f32(acc[3][1], b1, a0, 3);
    acc[4][0] = vfmaq_laneq_f32(acc[4][0], b0, a1, 0);
    acc[4][1] = vfmaq_laneq_f32(acc[4][1], b1, a1, 0);
    acc[5][0] = vfmaq_laneq_f32(acc[5][0], b0, a1, 1);
    acc[5][1] = vfmaq_laneq_f32(acc[5][1], b1, a1, 1);
    acc[6][0] = vfmaq_laneq_f32(acc[6][0], b0, a1, 2);
    acc[6][1] = vfmaq_laneq_f32(acc[6][1], b1, a1, 2);
    acc[7][0] = vfmaq_laneq_f32(acc[7][0], b0, a1, 3);
    acc[7][1] = vfmaq_laneq_f32(acc[7][1], b1, a1, 3);
  }
  for (int64_t i = 0; i < m_valid; ++i) {
    float* row = c + i * ldc;
    for (int h = 0; h < 2; ++h) {
      const int64_t cols = n_valid - 4 * h;  // valid columns of this register
      if (cols <= 0) break;
      float32x4_t v = acc[i][h];
      if (cols >= 4) {
        if (!overwrite) v = vaddq_f32(vld1q_f32(row + 4 * h), v);
        vst1q_f32(row + 4 * h, v);
      } else {
        if (!overwrite) v = vaddq_f32(load_partial(row + 4 * h, cols), v);
        store_partial(row + 4 * h, v, cols);
      }
    }
  }
}

}  // namespace

// The kGemmMR × kGemmNR = 8 × 32 tile in four column blocks of 8 × 8: the whole
// tile would need 64 accumulators and NEON has 32 registers.
void gemm_micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m_valid,
                int64_t n_valid, bool overwrite) {
  static_assert(kGemmMR == 8 && kGemmNR % 8 == 0, "micro_8x8 covers 8 rows");
  for (int64_t c0 = 0; c0 < kGemmNR && c0 < n_valid; c0 += 8)
    micro_8x8(kc, a, b + c0, c + c0, ldc, m_valid, n_valid - c0, overwrite);
}

}  // namespace toy::cpu::neon
