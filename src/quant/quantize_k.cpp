// Quantization to the K-quants (super-blocks of 256 with per-sub-block scales).
//
// Without importance weights each function reproduces ggml's quantize_row_*_ref:
//   Q2_K: make_qkx2_quants per 16 (weights |x|, mean-absolute error), 4-bit scales/mins.
//   Q3_K: make_q3_quants per 16 (x^2-weighted refinement), 6-bit signed scales.
//   Q4_K/Q5_K: make_qkx2_quants per 32 (weights rms + |x|), 6-bit scales and mins.
//   Q6_K: make_qx_quants per 16 (x^2 weights, 18 trial scales), 8-bit signed scales.
// After the sub-block scales are quantized, every element is re-rounded against the
// scale it will actually be decoded with, so the scale quantization error is not
// compounded. Importance weights (llama.cpp's imatrix) replace the error weights by
// importance[i] * sqrt(sigma^2 + x[i]^2), sigma^2 the super-block's mean square.
#include <cmath>
#include <cstring>

#include "quant/fp16.h"
#include "quant/rows.h"
#include "quant/scale_search.h"

namespace toy::quant {
namespace {

float mean_square(const float* x, int n) {
  float sum = 0;
  for (int i = 0; i < n; ++i) sum += x[i] * x[i];
  return sum / static_cast<float>(n);
}

// weights[l] = importance[l] * sqrt(sigma2 + x[l]^2) for one sub-block.
void importance_weights(const float* x, const float* importance, float sigma2, int n,
                        float* weights) {
  for (int l = 0; l < n; ++l) weights[l] = importance[l] * std::sqrt(sigma2 + x[l] * x[l]);
}

// Packs 256 levels of 2 bits: byte l of each 32-byte run holds elements l, l+32, l+64, l+96
// of its 128-element half at bit shifts 0, 2, 4, 6.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                           (L[j + l + 96] << 6));
}

// Stores the 6-bit scale `ls` and min `lm` of sub-block j in the 12-byte Q4_K/Q5_K layout
// read by get_scale_min_k4. `packed` must start zeroed.
void set_scale_min_k4(int j, int ls, int lm, uint8_t* packed) {
  if (j < 4) {
    packed[j] = static_cast<uint8_t>(ls);
    packed[j + 4] = static_cast<uint8_t>(lm);
  } else {
    packed[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
    packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
    packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
  }
}

// Shared Q4_K/Q5_K core for one super-block: finds levels L[256] in 0..nmax, writes the
// packed scales and the two F16 super-scales.
void quantize_superblock_k4(const float* x, int nmax, float rmin, int nstep,
                            const float* importance, uint8_t* L, uint16_t* d_out,
                            uint16_t* dmin_out, uint8_t* packed_scales) {
  constexpr int kSub = 32;
  float scales[kQK_K / kSub];  // (8) float scale per sub-block
  float mins[kQK_K / kSub];    // (8) float offset per sub-block (x ~ scale*L - min)
  float weights[kSub];
  uint8_t Laux[kSub];
  const float sigma2 = importance ? 2 * mean_square(x, kQK_K) : 0.f;
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQK_K / kSub; ++j) {
    const float* xs = x + kSub * j;
    if (importance) {
      importance_weights(xs, importance + kSub * j, sigma2, kSub, weights);
    } else {
      // Error weights: the sub-block's rms plus |x|, so large elements count more.
      const float av_x = std::sqrt(mean_square(xs, kSub));
      for (int l = 0; l < kSub; ++l) weights[l] = av_x + std::fabs(xs[l]);
    }
    scales[j] = make_qkx2_quants(kSub, nmax, xs, weights, L + kSub * j, &mins[j], Laux, rmin, 0.1f,
                                 nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  // Quantize the sub-block scales and mins to 6 bits against their maxima.
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(packed_scales, 0, kKScaleSize);
  for (int j = 0; j < kQK_K / kSub; ++j) {
    const int ls = clamp_int(nearest_int(inv_scale * scales[j]), 0, 63);
    const int lm = clamp_int(nearest_int(inv_min * mins[j]), 0, 63);
    set_scale_min_k4(j, ls, lm, packed_scales);
  }
  *d_out = f32_to_f16_saturate(max_scale / 63.f);
  *dmin_out = f32_to_f16_saturate(max_min / 63.f);
  // Re-round every element against its decoded scale and min.
  const float d = f16_to_f32(*d_out), dmin = f16_to_f32(*dmin_out);
  for (int j = 0; j < kQK_K / kSub; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, packed_scales, &sc, &m);
    const float dj = d * static_cast<float>(sc);
    if (!dj) continue;
    const float dm = dmin * static_cast<float>(m);
    for (int i = 0; i < kSub; ++i) {
      const int l = nearest_int((x[kSub * j + i] + dm) / dj);
      L[kSub * j + i] = static_cast<uint8_t>(clamp_int(l, 0, nmax));
    }
  }
}

}  // namespace

void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n, const float* importance) {
  uint8_t L[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    const float* imp = importance ? importance + b * kQK_K : nullptr;
    quantize_superblock_k4(x, 15, -1.f, 20, imp, L, &y[b].d, &y[b].dmin, y[b].scales);
    // Each 32 bytes of qs: sub-block 2k in the low nibbles, 2k+1 in the high nibbles.
    uint8_t* q = y[b].qs;
    for (int j = 0; j < kQK_K; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n, const float* importance) {
  uint8_t L[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    const float* imp = importance ? importance + b * kQK_K : nullptr;
    quantize_superblock_k4(x, 31, -0.5f, 15, imp, L, &y[b].d, &y[b].dmin, y[b].scales);
    // As Q4_K for the low 4 bits; bit 4 of sub-block 2k (2k+1) goes to qh bit 2k (2k+1).
    uint8_t* ql = y[b].qs;
    uint8_t* qh = y[b].qh;
    std::memset(qh, 0, kQK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int j = 0; j < kQK_K; j += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (int l = 0; l < 32; ++l) {
        int l1 = L[j + l], l2 = L[j + l + 32];
        if (l1 > 15) {
          l1 -= 16;
          qh[l] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          qh[l] |= m2;
        }
        ql[l] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
    }
  }
}

void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n, const float* importance) {
  constexpr int kSub = 16;
  int8_t L[kQK_K];
  float scales[kQK_K / kSub];  // (16) signed float scale per sub-block
  float weights[kSub];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    const float* imp = importance ? importance + b * kQK_K : nullptr;
    const float sigma2 = imp ? mean_square(x, kQK_K) : 0.f;
    float max_scale = 0, max_abs_scale = 0;
    for (int j = 0; j < kQK_K / kSub; ++j) {
      const float* qw = nullptr;
      if (imp) {
        importance_weights(x + kSub * j, imp + kSub * j, sigma2, kSub, weights);
        qw = weights;
      }
      scales[j] = make_qx_quants(kSub, 32, x + kSub * j, L + kSub * j, 1, qw);
      if (std::fabs(scales[j]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[b], 0, sizeof(BlockQ6_K));
      continue;
    }
    // 8-bit signed sub-block scales; the largest maps to -128 (its sign folded into d).
    const float iscale = -128.f / max_scale;
    y[b].d = f32_to_f16_saturate(1 / iscale);
    for (int j = 0; j < kQK_K / kSub; ++j)
      y[b].scales[j] = static_cast<int8_t>(clamp_int(nearest_int(iscale * scales[j]), -128, 127));
    const float d_super = f16_to_f32(y[b].d);
    for (int j = 0; j < kQK_K / kSub; ++j) {
      const float d = d_super * static_cast<float>(y[b].scales[j]);
      if (!d) continue;
      for (int i = 0; i < kSub; ++i) {
        const int l = clamp_int(nearest_int(x[kSub * j + i] / d), -32, 31);
        L[kSub * j + i] = static_cast<int8_t>(l + 32);
      }
    }
    // ql: low nibbles (elements l, l+32 low; l+64, l+96 high) per 64 bytes; qh: 2 bits each.
    uint8_t* ql = y[b].ql;
    uint8_t* qh = y[b].qh;
    for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
        const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                     ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
    }
  }
}

void quantize_row_q2_k(const float* x, BlockQ2_K* y, int64_t n, const float* importance) {
  constexpr int kSub = 16;
  constexpr float kScaleLevels = 15.f;  // 4-bit scales and mins
  uint8_t L[kQK_K];
  uint8_t Laux[kSub];
  float weights[kSub];
  float scales[kQK_K / kSub], mins[kQK_K / kSub];  // (16) each
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    const float* imp = importance ? importance + b * kQK_K : nullptr;
    const float sigma2 = imp ? mean_square(x, kQK_K) : 0.f;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kQK_K / kSub; ++j) {
      const float* xs = x + kSub * j;
      if (imp) {
        importance_weights(xs, imp + kSub * j, sigma2, kSub, weights);
      } else {
        for (int l = 0; l < kSub; ++l) weights[l] = std::fabs(xs[l]);
      }
      scales[j] = make_qkx2_quants(kSub, 3, xs, weights, L + kSub * j, &mins[j], Laux, -0.5f, 0.1f,
                                   15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
      const float iscale = kScaleLevels / max_scale;
      for (int j = 0; j < kQK_K / kSub; ++j)
        y[b].scales[j] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * scales[j]), 0, 15));
      y[b].d = f32_to_f16_saturate(max_scale / kScaleLevels);
    } else {
      std::memset(y[b].scales, 0, sizeof(y[b].scales));
      y[b].d = 0;
    }
    if (max_min > 0) {
      const float iscale = kScaleLevels / max_min;
      for (int j = 0; j < kQK_K / kSub; ++j)
        y[b].scales[j] |=
            static_cast<uint8_t>(clamp_int(nearest_int(iscale * mins[j]), 0, 15) << 4);
      y[b].dmin = f32_to_f16_saturate(max_min / kScaleLevels);
    } else {
      y[b].dmin = 0;
    }
    const float d_super = f16_to_f32(y[b].d), dmin_super = f16_to_f32(y[b].dmin);
    for (int j = 0; j < kQK_K / kSub; ++j) {
      const float d = d_super * static_cast<float>(y[b].scales[j] & 0xF);
      if (!d) continue;
      const float dm = dmin_super * static_cast<float>(y[b].scales[j] >> 4);
      for (int i = 0; i < kSub; ++i) {
        const int l = nearest_int((x[kSub * j + i] + dm) / d);
        L[kSub * j + i] = static_cast<uint8_t>(clamp_int(l, 0, 3));
      }
    }
    pack_2bit(L, y[b].qs);
  }
}

void quantize_row_q3_k(const float* x, BlockQ3_K* y, int64_t n, const float* importance) {
  constexpr int kSub = 16;
  int8_t L[kQK_K];
  float scales[kQK_K / kSub];  // (16) signed float scale per sub-block
  float weights[kSub];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    const float* imp = importance ? importance + b * kQK_K : nullptr;
    const float sigma2 = imp ? 2 * mean_square(x, kQK_K) : 0.f;
    float max_scale = 0, amax = 0;
    for (int j = 0; j < kQK_K / kSub; ++j) {
      if (imp) {
        importance_weights(x + kSub * j, imp + kSub * j, sigma2, kSub, weights);
        scales[j] = make_qx_quants(kSub, 4, x + kSub * j, L + kSub * j, 1, weights);
      } else {
        scales[j] = make_q3_quants(kSub, 4, x + kSub * j, L + kSub * j, true);
      }
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    // 6-bit signed scales biased by 32: low nibbles in bytes 0..7 (scales 0..7) and their
    // high nibbles (scales 8..15); the top 2 bits in bytes 8..11.
    std::memset(y[b].scales, 0, sizeof(y[b].scales));
    if (max_scale) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < kQK_K / kSub; ++j) {
        const int l = clamp_int(nearest_int(iscale * scales[j]), -32, 31) + 32;
        if (j < 8) {
          y[b].scales[j] = static_cast<uint8_t>(l & 0xF);
        } else {
          y[b].scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        }
        y[b].scales[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      y[b].d = f32_to_f16_saturate(1 / iscale);
    } else {
      y[b].d = 0;
    }
    const float d_super = f16_to_f32(y[b].d);
    for (int j = 0; j < kQK_K / kSub; ++j) {
      const int low = j < 8 ? (y[b].scales[j] & 0xF) : (y[b].scales[j - 8] >> 4);
      const int high = (y[b].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      const float d = d_super * static_cast<float>((low | (high << 4)) - 32);
      if (!d) continue;
      for (int i = 0; i < kSub; ++i) {
        const int l = clamp_int(nearest_int(x[kSub * j + i] / d), -4, 3);
        L[kSub * j + i] = static_cast<int8_t>(l + 4);
      }
    }
    // The high bit of each 3-bit level goes to hmask (element j: byte j % 32, bit j / 32).
    std::memset(y[b].hmask, 0, sizeof(y[b].hmask));
    uint8_t levels[kQK_K];
    for (int j = 0; j < kQK_K; ++j) {
      int l = L[j];
      if (l > 3) {
        y[b].hmask[j % 32] |= static_cast<uint8_t>(1u << (j / 32));
        l -= 4;
      }
      levels[j] = static_cast<uint8_t>(l);
    }
    pack_2bit(levels, y[b].qs);
  }
}

}  // namespace toy::quant
