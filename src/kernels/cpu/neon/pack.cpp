// NEON packing of weight rows and activation rows into the layout of
// quant/dot_pack.h, bit for bit what the portable packers write (the weight codes
// are bit shuffles; the scales are the same single float multiplications; the
// activation codes round half to even with fcvtns, as nearbyint does).
#include "kernels/cpu/backend.h"
#include "kernels/cpu/neon/simd.h"
#include "quant/blocks.h"

namespace toy::cpu::neon {
namespace {

using quant::PackedActRow;
using quant::PackedWeightRow;

inline void store_u8(uint8_t* p, uint8x16_t v) {
  vst1q_u8(p, v);
}

// The same scale for 4 lanes (16 elements) starting at lane `lane`.
inline void fill_lanes16(float* scale, int64_t lane, float value) {
  const float32x4_t v = vdupq_n_f32(value);
  vst1q_f32(scale + lane, v);
}

// Bit 4 of code j (j < 16 for `second` false, 16..31 otherwise) from bit j of qh:
// byte j of a table lookup picks byte j/8 of qh, then tests bit j%8.
inline uint8x16_t fifth_bits(const uint8_t qh[4], bool second) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  static const uint8_t kFirst[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  static const uint8_t kSecond[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t spread =
      vqtbl1q_u8(vreinterpretq_u8_u32(vdupq_n_u32(bits)), vld1q_u8(second ? kSecond : kFirst));
  return vandq_u8(vtstq_u8(spread, vld1q_u8(kBit)), vdupq_n_u8(0x10));
}

// Legacy blocks of 32: qs[j] holds element j (low nibble) and j + 16 (high).
template <typename Block, bool kFifthBit, bool kMin>
void pack_legacy(const Block* b, int64_t nb, const PackedWeightRow& out) {
  const uint8x16_t low_mask = vdupq_n_u8(0xF);
  for (int64_t i = 0; i < nb; ++i) {
    const uint8x16_t bytes = vld1q_u8(b[i].qs);
    uint8x16_t lo = vandq_u8(bytes, low_mask), hi = vshrq_n_u8(bytes, 4);
    if constexpr (kFifthBit) {
      lo = vorrq_u8(lo, fifth_bits(b[i].qh, false));
      hi = vorrq_u8(hi, fifth_bits(b[i].qh, true));
    }
    store_u8(out.u + i * 32, lo);
    store_u8(out.u + i * 32 + 16, hi);
    const float d = half_to_float(b[i].d);
    fill_lanes16(out.scale, i * 8, d);
    fill_lanes16(out.scale, i * 8 + 4, d);
    if constexpr (kMin) {
      const float m = half_to_float(b[i].m);
      out.min[2 * i] = m;
      out.min[2 * i + 1] = m;
    }
  }
}

void pack_q8_0(const quant::BlockQ8_0* b, int64_t nb, const PackedWeightRow& out) {
  const uint8x16_t sign = vdupq_n_u8(0x80);
  for (int64_t i = 0; i < nb; ++i) {
    // u = q + 128: flip the sign bit.
    const uint8_t* q = reinterpret_cast<const uint8_t*>(b[i].qs);
    store_u8(out.u + i * 32, veorq_u8(vld1q_u8(q), sign));
    store_u8(out.u + i * 32 + 16, veorq_u8(vld1q_u8(q + 16), sign));
    const float d = half_to_float(b[i].d);
    fill_lanes16(out.scale, i * 8, d);
    fill_lanes16(out.scale, i * 8 + 4, d);
  }
}

void pack_q2_k(const quant::BlockQ2_K* b, int64_t nb, const PackedWeightRow& out) {
  const uint8x16_t three = vdupq_n_u8(3);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d), dmin = half_to_float(b[i].dmin);
    uint8_t* u = out.u + i * 256;
    // Element 128*half + 32*shift + l is bits 2*shift.. of qs[32*half + l].
    for (int half = 0; half < 2; ++half) {
      for (int part = 0; part < 2; ++part) {
        const uint8x16_t q = vld1q_u8(b[i].qs + 32 * half + 16 * part);
        uint8_t* e = u + 128 * half + 16 * part;
        store_u8(e, vandq_u8(q, three));
        store_u8(e + 32, vandq_u8(vshrq_n_u8(q, 2), three));
        store_u8(e + 64, vandq_u8(vshrq_n_u8(q, 4), three));
        store_u8(e + 96, vshrq_n_u8(q, 6));
      }
    }
    for (int g = 0; g < 16; ++g) {
      fill_lanes16(out.scale, i * 64 + g * 4, d * static_cast<float>(b[i].scales[g] & 0xF));
      out.min[i * 16 + g] = -dmin * static_cast<float>(b[i].scales[g] >> 4);
    }
  }
}

// The 16 signed 6-bit scales of a Q3_K block (stored biased by 32 in 12 bytes).
void q3_k_scales(const uint8_t packed[12], int scales[16]) {
  for (int g = 0; g < 16; ++g) {
    const int low = g < 8 ? (packed[g] & 0xF) : (packed[g - 8] >> 4);
    const int high = (packed[8 + g % 4] >> (2 * (g / 4))) & 3;
    scales[g] = (low | (high << 4)) - 32;
  }
}

void pack_q3_k(const quant::BlockQ3_K* b, int64_t nb, const PackedWeightRow& out) {
  const uint8x16_t three = vdupq_n_u8(3), one = vdupq_n_u8(1);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d);
    uint8_t* u = out.u + i * 256;
    // Element 128*half + 32*shift + l: 2 low bits from qs[32*half + l] >> 2*shift,
    // plus 4 when bit (4*half + shift) of hmask[l] is set.
    for (int part = 0; part < 2; ++part) {
      const uint8x16_t hmask = vld1q_u8(b[i].hmask + 16 * part);
      for (int half = 0; half < 2; ++half) {
        const uint8x16_t q = vld1q_u8(b[i].qs + 32 * half + 16 * part);
        for (int shift = 0; shift < 4; ++shift) {
          const uint8x16_t low =
              vandq_u8(vshlq_u8(q, vdupq_n_s8(static_cast<int8_t>(-2 * shift))), three);
          const uint8x16_t high =
              vandq_u8(vshlq_u8(hmask, vdupq_n_s8(static_cast<int8_t>(-(4 * half + shift)))), one);
          store_u8(u + 128 * half + 32 * shift + 16 * part, vorrq_u8(low, vshlq_n_u8(high, 2)));
        }
      }
    }
    int scales[16];
    q3_k_scales(b[i].scales, scales);
    for (int g = 0; g < 16; ++g)
      fill_lanes16(out.scale, i * 64 + g * 4, d * static_cast<float>(scales[g]));
  }
}

// Q4_K / Q5_K: chunk c of 64 is the low nibbles of qs[32c..32c+32), then their
// high nibbles; Q5_K's fifth bits are bit 2c (low half) and 2c+1 (high half) of qh[l].
template <typename Block, bool kFifthBit>
void pack_q45_k(const Block* b, int64_t nb, const PackedWeightRow& out) {
  const uint8x16_t low_mask = vdupq_n_u8(0xF), one = vdupq_n_u8(1);
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* u = out.u + i * 256;
    for (int c = 0; c < 4; ++c) {
      for (int part = 0; part < 2; ++part) {
        const uint8x16_t q = vld1q_u8(b[i].qs + 32 * c + 16 * part);
        uint8x16_t lo = vandq_u8(q, low_mask), hi = vshrq_n_u8(q, 4);
        if constexpr (kFifthBit) {
          const uint8x16_t h = vld1q_u8(b[i].qh + 16 * part);
          const uint8x16_t h_lo =
              vandq_u8(vshlq_u8(h, vdupq_n_s8(static_cast<int8_t>(-2 * c))), one);
          const uint8x16_t h_hi =
              vandq_u8(vshlq_u8(h, vdupq_n_s8(static_cast<int8_t>(-2 * c - 1))), one);
          lo = vorrq_u8(lo, vshlq_n_u8(h_lo, 4));
          hi = vorrq_u8(hi, vshlq_n_u8(h_hi, 4));
        }
        store_u8(u + 64 * c + 16 * part, lo);
        store_u8(u + 64 * c + 32 + 16 * part, hi);
      }
    }
    quant::fill_q4_k_scales(b[i].d, b[i].dmin, b[i].scales, i * 256, out);
  }
}

void pack_q6_k(const quant::BlockQ6_K* b, int64_t nb, const PackedWeightRow& out) {
  const uint8x16_t low_mask = vdupq_n_u8(0xF), three = vdupq_n_u8(3);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d);
    uint8_t* u = out.u + i * 256;
    // Element 128*half + 32*k + l: a nibble of ql (low for k = 0, 1; high for 2, 3)
    // and bits 2k..2k+1 of qh[l] as its top two bits.
    for (int half = 0; half < 2; ++half) {
      for (int part = 0; part < 2; ++part) {
        const uint8_t* ql = b[i].ql + 64 * half + 16 * part;
        const uint8x16_t ql0 = vld1q_u8(ql), ql1 = vld1q_u8(ql + 32);
        const uint8x16_t h = vld1q_u8(b[i].qh + 32 * half + 16 * part);
        uint8_t* e = u + 128 * half + 16 * part;
        store_u8(e, vorrq_u8(vandq_u8(ql0, low_mask), vshlq_n_u8(vandq_u8(h, three), 4)));
        store_u8(e + 32, vorrq_u8(vandq_u8(ql1, low_mask),
                                  vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), three), 4)));
        store_u8(e + 64,
                 vorrq_u8(vshrq_n_u8(ql0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), three), 4)));
        store_u8(e + 96, vorrq_u8(vshrq_n_u8(ql1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4)));
      }
    }
    for (int g = 0; g < 16; ++g)
      fill_lanes16(out.scale, i * 64 + g * 4, d * static_cast<float>(b[i].scales[g]));
  }
}

// 16 int32 (four registers) -> 16 int8 with signed saturation, in order.
inline int8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
  const int16x8_t cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
  return vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd));
}

// ggml's quantize_row_q8_0 / q8_1 block (dot_pack.h's quantize_block32).
int quantize_block32(const float* x, int8_t* q, float* d_out) {
  float32x4_t v[8];
  for (int j = 0; j < 8; ++j) v[j] = vld1q_f32(x + 4 * j);
  float32x4_t a = vabsq_f32(v[0]);
  for (int j = 1; j < 8; ++j) a = vmaxq_f32(a, vabsq_f32(v[j]));
  const float amax = vmaxvq_f32(a);
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  const float32x4_t s = vdupq_n_f32(id);
  int32x4_t c[8];
  for (int j = 0; j < 8; ++j) c[j] = vcvtnq_s32_f32(vmulq_f32(v[j], s));
  vst1q_s8(q, narrow16(c[0], c[1], c[2], c[3]));
  vst1q_s8(q + 16, narrow16(c[4], c[5], c[6], c[7]));
  int32x4_t sum = c[0];
  for (int j = 1; j < 8; ++j) sum = vaddq_s32(sum, c[j]);
  *d_out = amax / 127.0f;
  return vaddvq_s32(sum);
}

// ggml's quantize_row_q8_K block (dot_pack.h's quantize_block256): the scale
// comes from the first value of largest magnitude, with its sign.
void quantize_block256(const float* x, int8_t* q, float* d_out, int sums[16]) {
  float32x4_t a = vdupq_n_f32(0.0f);
  for (int j = 0; j < 256; j += 4) a = vmaxq_f32(a, vabsq_f32(vld1q_f32(x + j)));
  const float amax = vmaxvq_f32(a);
  if (amax == 0.0f) {
    std::memset(q, 0, 256);
    for (int g = 0; g < 16; ++g) sums[g] = 0;
    *d_out = 0.0f;
    return;
  }
  float max = 0.0f;
  const float32x4_t target = vdupq_n_f32(amax);
  for (int j = 0; j < 256; j += 4) {
    const uint32x4_t hit = vceqq_f32(vabsq_f32(vld1q_f32(x + j)), target);
    if (vmaxvq_u32(hit) != 0) {
      uint32_t lanes[4];
      vst1q_u32(lanes, hit);
      int k = 0;
      while (lanes[k] == 0) ++k;
      max = x[j + k];
      break;
    }
  }
  const float iscale = -127.0f / max;
  const float32x4_t s = vdupq_n_f32(iscale);
  const int32x4_t cap = vdupq_n_s32(127);
  for (int g = 0; g < 16; ++g) {
    int32x4_t c[4];
    for (int j = 0; j < 4; ++j)
      c[j] = vminq_s32(vcvtnq_s32_f32(vmulq_f32(s, vld1q_f32(x + 16 * g + 4 * j))), cap);
    vst1q_s8(q + 16 * g, narrow16(c[0], c[1], c[2], c[3]));
    sums[g] = vaddvq_s32(vaddq_s32(vaddq_s32(c[0], c[1]), vaddq_s32(c[2], c[3])));
  }
  *d_out = 1.0f / iscale;
}

}  // namespace

void pack_weight_row(DType type, const void* row, int64_t n, const PackedWeightRow& out) {
  const int64_t nb = n / dtype_info(type).block_size;
  switch (type) {
    case DType::Q4_0:
      pack_legacy<quant::BlockQ4_0, false, false>(static_cast<const quant::BlockQ4_0*>(row), nb,
                                                  out);
      break;
    case DType::Q4_1:
      pack_legacy<quant::BlockQ4_1, false, true>(static_cast<const quant::BlockQ4_1*>(row), nb,
                                                 out);
      break;
    case DType::Q5_0:
      pack_legacy<quant::BlockQ5_0, true, false>(static_cast<const quant::BlockQ5_0*>(row), nb,
                                                 out);
      break;
    case DType::Q5_1:
      pack_legacy<quant::BlockQ5_1, true, true>(static_cast<const quant::BlockQ5_1*>(row), nb, out);
      break;
    case DType::Q8_0:
      pack_q8_0(static_cast<const quant::BlockQ8_0*>(row), nb, out);
      break;
    case DType::Q2_K:
      pack_q2_k(static_cast<const quant::BlockQ2_K*>(row), nb, out);
      break;
    case DType::Q3_K:
      pack_q3_k(static_cast<const quant::BlockQ3_K*>(row), nb, out);
      break;
    case DType::Q4_K:
      pack_q45_k<quant::BlockQ4_K, false>(static_cast<const quant::BlockQ4_K*>(row), nb, out);
      break;
    case DType::Q5_K:
      pack_q45_k<quant::BlockQ5_K, true>(static_cast<const quant::BlockQ5_K*>(row), nb, out);
      break;
    case DType::Q6_K:
      pack_q6_k(static_cast<const quant::BlockQ6_K*>(row), nb, out);
      break;
    default:
      quant::pack_weight_row(type, row, n, out);  // reports the unsupported type
      return;
  }
  quant::pad_weight_row(type, n, out);
}

void pack_activation_row(DType weight_type, const float* x, int64_t n, const PackedActRow& out) {
  quant::pack_activation_row_using({quantize_block32, quantize_block256}, weight_type, x, n, out);
}

}  // namespace toy::cpu::neon
