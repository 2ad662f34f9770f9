// Quantization to the 16-bit types and the 32-element block types, plus Q8_K
// (the activation format of the K-quant dot products).
//
// Each follows ggml's quantize_row_*_ref, so the same input gives the same bytes.
// Deviations, all only for inputs where ggml itself misbehaves: block scales that
// overflow F16 saturate at 65504 instead of becoming inf, and float->int
// conversions are clamped so NaN/inf inputs cannot cause undefined behaviour.
#include <cmath>
#include <cstring>

#include "quant/fp16.h"
#include "quant/rows.h"
#include "quant/scale_search.h"

namespace toy::quant {
namespace {

// The element of largest magnitude, with its sign (ties keep the first).
float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, int n, float* min, float* max) {
  *min = INFINITY;
  *max = -INFINITY;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

}  // namespace

void quantize_row_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

void quantize_row_bf16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
  constexpr int kHalf = kQK4_0 / 2;
  for (int64_t b = 0; b < n / kQK4_0; ++b, x += kQK4_0) {
    // The signed extreme maps to level 0 (value -8), so it is represented exactly
    // and the other side gets the range up to +7.
    const float d = signed_absmax(x, kQK4_0) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16_saturate(d);
    for (int j = 0; j < kHalf; ++j) {
      const int low = truncate_clamped(x[j] * id + 8.5f, 0, 15);
      const int high = truncate_clamped(x[j + kHalf] * id + 8.5f, 0, 15);
      y[b].qs[j] = static_cast<uint8_t>(low | (high << 4));
    }
  }
}

void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n) {
  constexpr int kHalf = kQK4_1 / 2;
  for (int64_t b = 0; b < n / kQK4_1; ++b, x += kQK4_1) {
    float min, max;
    min_max(x, kQK4_1, &min, &max);
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16_saturate(d);
    y[b].m = f32_to_f16_saturate(min);
    for (int j = 0; j < kHalf; ++j) {
      const int low = truncate_clamped((x[j] - min) * id + 0.5f, 0, 15);
      const int high = truncate_clamped((x[j + kHalf] - min) * id + 0.5f, 0, 15);
      y[b].qs[j] = static_cast<uint8_t>(low | (high << 4));
    }
  }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n) {
  constexpr int kHalf = kQK5_0 / 2;
  for (int64_t b = 0; b < n / kQK5_0; ++b, x += kQK5_0) {
    const float d = signed_absmax(x, kQK5_0) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16_saturate(d);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const int low = truncate_clamped(x[j] * id + 16.5f, 0, 31);
      const int high = truncate_clamped(x[j + kHalf] * id + 16.5f, 0, 31);
      y[b].qs[j] = static_cast<uint8_t>((low & 0x0F) | ((high & 0x0F) << 4));
      qh |= static_cast<uint32_t>((low & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((high & 0x10) >> 4) << (j + kHalf);
    }
    std::memcpy(y[b].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n) {
  constexpr int kHalf = kQK5_1 / 2;
  for (int64_t b = 0; b < n / kQK5_1; ++b, x += kQK5_1) {
    float min, max;
    min_max(x, kQK5_1, &min, &max);
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16_saturate(d);
    y[b].m = f32_to_f16_saturate(min);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const int low = truncate_clamped((x[j] - min) * id + 0.5f, 0, 31);
      const int high = truncate_clamped((x[j + kHalf] - min) * id + 0.5f, 0, 31);
      y[b].qs[j] = static_cast<uint8_t>((low & 0x0F) | ((high & 0x0F) << 4));
      qh |= static_cast<uint32_t>((low & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((high & 0x10) >> 4) << (j + kHalf);
    }
    std::memcpy(y[b].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b, x += kQK8_0) {
    float amax = 0;
    for (int j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16_saturate(d);
    for (int j = 0; j < kQK8_0; ++j) {
      // roundf: ties away from zero, as ggml's reference.
      const float v = std::round(x[j] * id);
      y[b].qs[j] = static_cast<int8_t>(truncate_clamped(v, -127, 127));
    }
  }
}

void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    const float max = signed_absmax(x, kQK_K);
    if (max == 0 || !std::isfinite(max)) {
      // All zeros (or unrepresentable): ggml writes an all-zero block.
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    // -127 rather than -128 so every level fits in int8 symmetrically (ggml's choice,
    // which keeps the SIMD sign tricks of the IQ dot products valid).
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j)
      y[b].qs[j] = static_cast<int8_t>(clamp_int(nearest_int(iscale * x[j]), -128, 127));
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += y[b].qs[g * 16 + i];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1 / iscale;
  }
}

}  // namespace toy::quant
