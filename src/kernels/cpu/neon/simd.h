// Helpers shared by the NEON backend's files (included only by them: they are
// compiled with -march=armv8.2-a+dotprod+fp16). An anonymous namespace keeps
// each file's copy to itself (see the rules in kernels/cpu/backend.h).
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace toy::cpu::neon {
namespace {

// F16 bits -> F32, exact (fcvt; a signalling NaN comes back quiet).
inline float half_to_float(uint16_t h) {
  __fp16 v;
  std::memcpy(&v, &h, 2);
  return static_cast<float>(v);
}

inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

// 4 F16 / BF16 values as F32.
inline float32x4_t widen_f16(uint16x4_t h) {
  return vcvt_f32_f16(vreinterpret_f16_u16(h));
}
inline float32x4_t widen_bf16(uint16x4_t h) {
  return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

// exp(x) = 2^n · e^r with n = round(x/ln 2), r = x − n·ln 2, e^r by its degree-6
// Taylor polynomial, 2^n applied as two exact powers of two: the AVX2 / AVX-512
// backends' exp_ps step for step (same constants, same fused operations), so
// every backend gives the same bits.
inline float32x4_t exp_ps(float32x4_t x) {
  const float32x4_t log2e = vdupq_n_f32(1.44269504088896341f);
  const float32x4_t ln2_hi = vdupq_n_f32(0.693359375f);
  const float32x4_t ln2_lo = vdupq_n_f32(-2.12194440e-4f);
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-104.0f)), vdupq_n_f32(88.8f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, log2e));  // to nearest, ties to even
  float32x4_t r = vfmsq_f32(x, n, ln2_hi);                // x − n·ln2_hi, fused
  r = vfmsq_f32(r, n, ln2_lo);
  float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const int32x4_t ni = vcvtq_s32_f32(n);  // -150 .. 129, exact
  const int32x4_t n1 = vshrq_n_s32(ni, 1);
  const int32x4_t n2 = vsubq_s32(ni, n1);
  auto pow2 = [](int32x4_t e) {  // 2^e for -75 <= e <= 65
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(e, vdupq_n_s32(127)), 23));
  };
  return vmulq_f32(vmulq_f32(p, pow2(n1)), pow2(n2));
}

// Up to 4 floats from / to memory (n clamped to 0..4), for loop tails.
inline float32x4_t load_partial(const float* p, int64_t n) {
  float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t i = 0; i < n && i < 4; ++i) tmp[i] = p[i];
  return vld1q_f32(tmp);
}
inline void store_partial(float* p, float32x4_t v, int64_t n) {
  float tmp[4];
  vst1q_f32(tmp, v);
  for (int64_t i = 0; i < n && i < 4; ++i) p[i] = tmp[i];
}

}  // namespace
}  // namespace toy::cpu::neon
