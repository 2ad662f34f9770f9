#include "quant/dot_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "quant/dot_pack.h"
#include "quant/fp16.h"

namespace toy::quant {
namespace {

// ---- Activation blocks ----------------------------------------------------------

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[i].d = f32_to_f16(amax / 127.0f);
    for (int j = 0; j < 32; ++j) y[i].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
  }
}

void quantize_q8_1(const float* x, BlockQ8_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].d = f32_to_f16(d);
    y[i].s = f32_to_f16(d * static_cast<float>(sum));
  }
}

void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 256) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 256; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
    if (amax == 0.0f) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < 256; ++j) {
      const int v = std::min(127, static_cast<int>(std::nearbyint(iscale * x[j])));
      y[i].qs[j] = static_cast<int8_t>(v);
      y[i].bsums[j / 16] = static_cast<int16_t>(y[i].bsums[j / 16] + v);
    }
    y[i].d = 1.0f / iscale;
  }
}

// ---- Legacy weight blocks × Q8_0 / Q8_1 --------------------------------------------

// Codes of a 4-bit block: low nibbles are elements 0..15, high nibbles 16..31.
// (Two plain loops: GCC 12 -O3 -march=znver4 miscompiles the single loop with a
// `j < 16 ? low : high` select.)
inline void nibbles(const uint8_t* qs, int codes[32]) {
  for (int j = 0; j < 16; ++j) codes[j] = qs[j] & 0xF;
  for (int j = 0; j < 16; ++j) codes[j + 16] = qs[j] >> 4;
}

// Adds bit 4 of element j (bit j of qh) to the nibbles.
inline void add_fifth_bits(const uint8_t qh[4], int codes[32]) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  for (int j = 0; j < 32; ++j) codes[j] |= static_cast<int>(((bits >> j) & 1) << 4);
}

inline int code_dot(const int codes[32], int zero_point, const int8_t* q) {
  int isum = 0;
  for (int j = 0; j < 32; ++j) isum += (codes[j] - zero_point) * q[j];
  return isum;
}

float dot_q4_0(const BlockQ4_0* w, const BlockQ8_0* x, int64_t nb) {
  float sum = 0.0f;
  int codes[32];
  for (int64_t i = 0; i < nb; ++i) {
    nibbles(w[i].qs, codes);
    const int isum = code_dot(codes, 8, x[i].qs);
    sum += static_cast<float>(isum) * f16_to_f32(w[i].d) * f16_to_f32(x[i].d);
  }
  return sum;
}

float dot_q4_1(const BlockQ4_1* w, const BlockQ8_1* x, int64_t nb) {
  float sum = 0.0f;
  int codes[32];
  for (int64_t i = 0; i < nb; ++i) {
    nibbles(w[i].qs, codes);
    const int isum = code_dot(codes, 0, x[i].qs);
    sum += static_cast<float>(isum) * f16_to_f32(w[i].d) * f16_to_f32(x[i].d) +
           f16_to_f32(w[i].m) * f16_to_f32(x[i].s);
  }
  return sum;
}

float dot_q5_0(const BlockQ5_0* w, const BlockQ8_0* x, int64_t nb) {
  float sum = 0.0f;
  int codes[32];
  for (int64_t i = 0; i < nb; ++i) {
    nibbles(w[i].qs, codes);
    add_fifth_bits(w[i].qh, codes);
    const int isum = code_dot(codes, 16, x[i].qs);
    sum += static_cast<float>(isum) * f16_to_f32(w[i].d) * f16_to_f32(x[i].d);
  }
  return sum;
}

float dot_q5_1(const BlockQ5_1* w, const BlockQ8_1* x, int64_t nb) {
  float sum = 0.0f;
  int codes[32];
  for (int64_t i = 0; i < nb; ++i) {
    nibbles(w[i].qs, codes);
    add_fifth_bits(w[i].qh, codes);
    const int isum = code_dot(codes, 0, x[i].qs);
    sum += static_cast<float>(isum) * f16_to_f32(w[i].d) * f16_to_f32(x[i].d) +
           f16_to_f32(w[i].m) * f16_to_f32(x[i].s);
  }
  return sum;
}

float dot_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, int64_t nb) {
  float sum = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    int isum = 0;
    for (int j = 0; j < 32; ++j) isum += w[i].qs[j] * x[i].qs[j];
    sum += static_cast<float>(isum) * f16_to_f32(w[i].d) * f16_to_f32(x[i].d);
  }
  return sum;
}

// ---- K-quant weight super-blocks × Q8_K ------------------------------------------------
//
// Each decodes one super-block into signed codes c[256] (zero point applied), integer
// sub-block scales and mins, then: d * dx * sum_g scale[g] * (c · q)_g
//                                   - dmin * dx * sum_g min[g] * bsum[g].

struct KBlock {
  int code[256];
  int scale[16];  // per group of 16
  int min[16];    // per group of 16 (0 for types without mins)
  float d;
  float dmin;
};

float dot_kblock(const KBlock& k, const BlockQ8_K& x) {
  int scaled = 0, mins = 0;
  for (int g = 0; g < 16; ++g) {
    int isum = 0;
    for (int l = 0; l < 16; ++l) isum += k.code[16 * g + l] * x.qs[16 * g + l];
    scaled += k.scale[g] * isum;
    mins += k.min[g] * x.bsums[g];
  }
  return k.d * x.d * static_cast<float>(scaled) - k.dmin * x.d * static_cast<float>(mins);
}

void decode_q2_k(const BlockQ2_K& b, KBlock& k) {
  for (int half = 0; half < 2; ++half)
    for (int shift = 0; shift < 4; ++shift)
      for (int l = 0; l < 32; ++l)
        k.code[128 * half + 32 * shift + l] = (b.qs[32 * half + l] >> (2 * shift)) & 3;
  for (int g = 0; g < 16; ++g) {
    k.scale[g] = b.scales[g] & 0xF;
    k.min[g] = b.scales[g] >> 4;
  }
  k.d = f16_to_f32(b.d);
  k.dmin = f16_to_f32(b.dmin);
}

void decode_q3_k(const BlockQ3_K& b, KBlock& k) {
  for (int half = 0; half < 2; ++half)
    for (int shift = 0; shift < 4; ++shift)
      for (int l = 0; l < 32; ++l) {
        const int low = (b.qs[32 * half + l] >> (2 * shift)) & 3;
        const bool high = (b.hmask[l] >> (4 * half + shift)) & 1;
        k.code[128 * half + 32 * shift + l] = low - (high ? 0 : 4);
      }
  for (int g = 0; g < 16; ++g) {
    const int low = g < 8 ? (b.scales[g] & 0xF) : (b.scales[g - 8] >> 4);
    const int high = (b.scales[8 + g % 4] >> (2 * (g / 4))) & 3;
    k.scale[g] = (low | (high << 4)) - 32;
    k.min[g] = 0;
  }
  k.d = f16_to_f32(b.d);
  k.dmin = 0.0f;
}

void k4_scales(const uint8_t packed[12], KBlock& k) {
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, packed, &sc, &m);
    k.scale[2 * j] = k.scale[2 * j + 1] = sc;
    k.min[2 * j] = k.min[2 * j + 1] = m;
  }
}

void decode_q4_k(const BlockQ4_K& b, KBlock& k) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      k.code[64 * c + l] = b.qs[32 * c + l] & 0xF;
      k.code[64 * c + 32 + l] = b.qs[32 * c + l] >> 4;
    }
  k4_scales(b.scales, k);
  k.d = f16_to_f32(b.d);
  k.dmin = f16_to_f32(b.dmin);
}

void decode_q5_k(const BlockQ5_K& b, KBlock& k) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      k.code[64 * c + l] = (b.qs[32 * c + l] & 0xF) | (((b.qh[l] >> (2 * c)) & 1) << 4);
      k.code[64 * c + 32 + l] = (b.qs[32 * c + l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4);
    }
  k4_scales(b.scales, k);
  k.d = f16_to_f32(b.d);
  k.dmin = f16_to_f32(b.dmin);
}

void decode_q6_k(const BlockQ6_K& b, KBlock& k) {
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b.ql + 64 * half;
    const uint8_t* qh = b.qh + 32 * half;
    int* c = k.code + 128 * half;
    for (int l = 0; l < 32; ++l) {
      c[l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      c[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      c[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      c[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
    }
  }
  for (int g = 0; g < 16; ++g) {
    k.scale[g] = b.scales[g];
    k.min[g] = 0;
  }
  k.d = f16_to_f32(b.d);
  k.dmin = 0.0f;
}

template <typename Block, void (*decode)(const Block&, KBlock&)>
float dot_k(const void* w, const BlockQ8_K* x, int64_t nb) {
  const Block* blocks = static_cast<const Block*>(w);
  float sum = 0.0f;
  KBlock k;
  for (int64_t i = 0; i < nb; ++i) {
    decode(blocks[i], k);
    sum += dot_kblock(k, x[i]);
  }
  return sum;
}

}  // namespace

int64_t act_row_bytes_ref(DType weight_type, int64_t n) {
  switch (int_dot_traits(weight_type).act) {
    case ActQuant::Q8_0:
      return n / 32 * static_cast<int64_t>(sizeof(BlockQ8_0));
    case ActQuant::Q8_1:
      return n / 32 * static_cast<int64_t>(sizeof(BlockQ8_1));
    case ActQuant::Q8_K:
      return n / 256 * static_cast<int64_t>(sizeof(BlockQ8_K));
  }
  return 0;
}

void quantize_act_row_ref(DType weight_type, const float* x, void* dst, int64_t n) {
  switch (int_dot_traits(weight_type).act) {
    case ActQuant::Q8_0:
      quantize_q8_0(x, static_cast<BlockQ8_0*>(dst), n / 32);
      break;
    case ActQuant::Q8_1:
      quantize_q8_1(x, static_cast<BlockQ8_1*>(dst), n / 32);
      break;
    case ActQuant::Q8_K:
      quantize_q8_k(x, static_cast<BlockQ8_K*>(dst), n / 256);
      break;
  }
}

float vec_dot_ref(DType weight_type, const void* w, const void* x, int64_t n) {
  const auto* x8_0 = static_cast<const BlockQ8_0*>(x);
  const auto* x8_1 = static_cast<const BlockQ8_1*>(x);
  const auto* x8_k = static_cast<const BlockQ8_K*>(x);
  switch (weight_type) {
    case DType::Q4_0:
      return dot_q4_0(static_cast<const BlockQ4_0*>(w), x8_0, n / 32);
    case DType::Q4_1:
      return dot_q4_1(static_cast<const BlockQ4_1*>(w), x8_1, n / 32);
    case DType::Q5_0:
      return dot_q5_0(static_cast<const BlockQ5_0*>(w), x8_0, n / 32);
    case DType::Q5_1:
      return dot_q5_1(static_cast<const BlockQ5_1*>(w), x8_1, n / 32);
    case DType::Q8_0:
      return dot_q8_0(static_cast<const BlockQ8_0*>(w), x8_0, n / 32);
    case DType::Q2_K:
      return dot_k<BlockQ2_K, decode_q2_k>(w, x8_k, n / 256);
    case DType::Q3_K:
      return dot_k<BlockQ3_K, decode_q3_k>(w, x8_k, n / 256);
    case DType::Q4_K:
      return dot_k<BlockQ4_K, decode_q4_k>(w, x8_k, n / 256);
    case DType::Q5_K:
      return dot_k<BlockQ5_K, decode_q5_k>(w, x8_k, n / 256);
    case DType::Q6_K:
      return dot_k<BlockQ6_K, decode_q6_k>(w, x8_k, n / 256);
    default:
      TOY_CHECK(false, "no quantized dot product for ", dtype_name(weight_type));
  }
  return 0.0f;
}

}  // namespace toy::quant
