#include "quant/dot_pack.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

#ifdef __F16C__
#include <immintrin.h>  // _cvtsh_ss / _cvtss_sh (F16C without AVX-512)
#endif

namespace toy::quant {
namespace {

size_t align64(size_t n) {
  return (n + 63) / 64 * 64;
}

// F16 <-> F32 with the F16C instructions when present (same bits as quant/fp16.h
// for finite values; the scales here are finite).
inline float half_to_float(uint16_t h) {
#ifdef __F16C__
  return _cvtsh_ss(h);
#else
  return f16_to_f32(h);
#endif
}
inline uint16_t float_to_half(float f) {
#ifdef __F16C__
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
  return f32_to_f16(f);
#endif
}

// Per-lane scale for elements [begin, begin + count) (count a multiple of 4).
inline void fill_lanes(float* scale, int64_t begin, int64_t count, float value) {
  for (int64_t l = begin / 4; l < (begin + count) / 4; ++l) scale[l] = value;
}
inline void fill_groups(float* min, int64_t begin, int64_t count, float value) {
  for (int64_t g = begin / 16; g < (begin + count) / 16; ++g) min[g] = value;
}

// ---- Legacy 32-element blocks -------------------------------------------------

// The codes of legacy block i (Q4_x: nibbles; Q5_x: nibbles plus qh bits) into u.
template <typename Block, bool kFifthBit>
inline void legacy_codes(const Block& b, uint8_t* u) {
  for (int j = 0; j < 16; ++j) {
    u[j] = b.qs[j] & 0xF;
    u[j + 16] = b.qs[j] >> 4;
  }
  if constexpr (kFifthBit) {
    uint32_t bits;
    std::memcpy(&bits, b.qh, 4);
    for (int j = 0; j < 32; ++j) u[j] |= static_cast<uint8_t>(((bits >> j) & 1) << 4);
  }
}

void pack_q4_0(const BlockQ4_0* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    legacy_codes<BlockQ4_0, false>(b[i], out.u + i * 32);
    fill_lanes(out.scale, i * 32, 32, half_to_float(b[i].d));
  }
}

void pack_q4_1(const BlockQ4_1* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    legacy_codes<BlockQ4_1, false>(b[i], out.u + i * 32);
    fill_lanes(out.scale, i * 32, 32, half_to_float(b[i].d));
    fill_groups(out.min, i * 32, 32, half_to_float(b[i].m));
  }
}

void pack_q5_0(const BlockQ5_0* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    legacy_codes<BlockQ5_0, true>(b[i], out.u + i * 32);
    fill_lanes(out.scale, i * 32, 32, half_to_float(b[i].d));
  }
}

void pack_q5_1(const BlockQ5_1* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    legacy_codes<BlockQ5_1, true>(b[i], out.u + i * 32);
    fill_lanes(out.scale, i * 32, 32, half_to_float(b[i].d));
    fill_groups(out.min, i * 32, 32, half_to_float(b[i].m));
  }
}

void pack_q8_0(const BlockQ8_0* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* u = out.u + i * 32;
    for (int j = 0; j < 32; ++j) u[j] = static_cast<uint8_t>(b[i].qs[j] + 128);
    fill_lanes(out.scale, i * 32, 32, half_to_float(b[i].d));
  }
}

// ---- K-quants: super-blocks of 256 --------------------------------------------

void pack_q2_k(const BlockQ2_K* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d), dmin = half_to_float(b[i].dmin);
    uint8_t* u = out.u + i * 256;
    // Two halves of 128: byte l of qs[32*half..] holds elements l, l+32, l+64, l+96
    // (2 bits each, lowest first); sub-blocks of 16 follow element order.
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b[i].qs + 32 * half;
      for (int shift = 0; shift < 4; ++shift)
        for (int l = 0; l < 32; ++l) u[128 * half + 32 * shift + l] = (q[l] >> (2 * shift)) & 3;
    }
    for (int g = 0; g < 16; ++g) {
      fill_lanes(out.scale, i * 256 + g * 16, 16, d * static_cast<float>(b[i].scales[g] & 0xF));
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

void pack_q3_k(const BlockQ3_K* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d);
    uint8_t* u = out.u + i * 256;
    // Element 128*half + 32*shift + l: 2 low bits from qs[32*half + l] >> 2*shift,
    // high bit from hmask[l] bit (4*half + shift); value = q - 4 when the bit is clear.
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b[i].qs + 32 * half;
      for (int shift = 0; shift < 4; ++shift) {
        const int bit = 4 * half + shift;
        for (int l = 0; l < 32; ++l) {
          const int low = (q[l] >> (2 * shift)) & 3;
          const int high = (b[i].hmask[l] >> bit) & 1;
          u[128 * half + 32 * shift + l] = static_cast<uint8_t>(low + 4 * high);
        }
      }
    }
    int scales[16];
    q3_k_scales(b[i].scales, scales);
    for (int g = 0; g < 16; ++g)
      fill_lanes(out.scale, i * 256 + g * 16, 16, d * static_cast<float>(scales[g]));
  }
}

}  // namespace

void fill_q4_k_scales(uint16_t d16, uint16_t dmin16, const uint8_t packed[12], int64_t first,
                      const PackedWeightRow& out) {
  const float d = half_to_float(d16), dmin = half_to_float(dmin16);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, packed, &sc, &m);
    fill_lanes(out.scale, first + 32 * j, 32, d * static_cast<float>(sc));
    fill_groups(out.min, first + 32 * j, 32, -dmin * static_cast<float>(m));
  }
}

namespace {

void pack_q4_k(const BlockQ4_K* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* u = out.u + i * 256;
    // Chunk c of 64: low nibbles of qs[32c..32c+32) then their high nibbles.
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = b[i].qs + 32 * c;
      for (int l = 0; l < 32; ++l) {
        u[64 * c + l] = q[l] & 0xF;
        u[64 * c + 32 + l] = q[l] >> 4;
      }
    }
    fill_q4_k_scales(b[i].d, b[i].dmin, b[i].scales, i * 256, out);
  }
}

void pack_q5_k(const BlockQ5_K* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* u = out.u + i * 256;
    // As Q4_K; bit 2c of qh[l] is the fifth bit of element 64c + l, bit 2c+1 of 64c+32+l.
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = b[i].qs + 32 * c;
      for (int l = 0; l < 32; ++l) {
        const uint8_t h = b[i].qh[l];
        u[64 * c + l] = static_cast<uint8_t>((q[l] & 0xF) | (((h >> (2 * c)) & 1) << 4));
        u[64 * c + 32 + l] = static_cast<uint8_t>((q[l] >> 4) | (((h >> (2 * c + 1)) & 1) << 4));
      }
    }
    fill_q4_k_scales(b[i].d, b[i].dmin, b[i].scales, i * 256, out);
  }
}

void pack_q6_k(const BlockQ6_K* b, int64_t nb, const PackedWeightRow& out) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d);
    uint8_t* u = out.u + i * 256;
    // Each half of 128 uses ql[64*half..+64) and qh[32*half..+32): element
    // 128*half + 32*k + l takes a nibble of ql (low for k = 0, 1; high for 2, 3) and
    // bits 2k..2k+1 of qh[l] as its top two bits.
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b[i].ql + 64 * half;
      const uint8_t* qh = b[i].qh + 32 * half;
      uint8_t* e = u + 128 * half;
      for (int l = 0; l < 32; ++l) {
        e[l] = static_cast<uint8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
        e[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
        e[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        e[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
    }
    for (int g = 0; g < 16; ++g) {
      const float s = d * static_cast<float>(b[i].scales[g]);
      fill_lanes(out.scale, i * 256 + g * 16, 16, s);
    }
  }
}

}  // namespace

bool int_dot_supported(DType type) {
  switch (type) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

IntDotTraits int_dot_traits(DType type) {
  switch (type) {
    case DType::Q4_0:
      return {ActQuant::Q8_0, 8, false, 32};
    case DType::Q4_1:
      return {ActQuant::Q8_1, 0, true, 32};
    case DType::Q5_0:
      return {ActQuant::Q8_0, 16, false, 32};
    case DType::Q5_1:
      return {ActQuant::Q8_1, 0, true, 32};
    case DType::Q8_0:
      return {ActQuant::Q8_0, 128, false, 32};
    case DType::Q2_K:
      return {ActQuant::Q8_K, 0, true, 16};
    case DType::Q3_K:
      return {ActQuant::Q8_K, 4, false, 16};
    case DType::Q4_K:
      return {ActQuant::Q8_K, 0, true, 32};
    case DType::Q5_K:
      return {ActQuant::Q8_K, 0, true, 32};
    case DType::Q6_K:
      return {ActQuant::Q8_K, 32, false, 16};
    default:
      TOY_CHECK(false, "no integer dot product for ", dtype_name(type));
  }
  return {};
}

size_t packed_weight_row_bytes(int64_t n) {
  const size_t np = static_cast<size_t>(packed_length(n));
  return align64(np) + align64(np) + align64(np / 4);
}

PackedWeightRow packed_weight_row_at(uint8_t* memory, int64_t n) {
  const size_t np = static_cast<size_t>(packed_length(n));
  PackedWeightRow row;
  row.u = memory;
  row.scale = reinterpret_cast<float*>(memory + align64(np));
  row.min = reinterpret_cast<float*>(memory + 2 * align64(np));
  return row;
}

void pack_weight_row(DType type, const void* row, int64_t n, const PackedWeightRow& out) {
  const int64_t block = dtype_info(type).block_size;
  const int64_t nb = n / block;
  switch (type) {
    case DType::Q4_0:
      pack_q4_0(static_cast<const BlockQ4_0*>(row), nb, out);
      break;
    case DType::Q4_1:
      pack_q4_1(static_cast<const BlockQ4_1*>(row), nb, out);
      break;
    case DType::Q5_0:
      pack_q5_0(static_cast<const BlockQ5_0*>(row), nb, out);
      break;
    case DType::Q5_1:
      pack_q5_1(static_cast<const BlockQ5_1*>(row), nb, out);
      break;
    case DType::Q8_0:
      pack_q8_0(static_cast<const BlockQ8_0*>(row), nb, out);
      break;
    case DType::Q2_K:
      pack_q2_k(static_cast<const BlockQ2_K*>(row), nb, out);
      break;
    case DType::Q3_K:
      pack_q3_k(static_cast<const BlockQ3_K*>(row), nb, out);
      break;
    case DType::Q4_K:
      pack_q4_k(static_cast<const BlockQ4_K*>(row), nb, out);
      break;
    case DType::Q5_K:
      pack_q5_k(static_cast<const BlockQ5_K*>(row), nb, out);
      break;
    case DType::Q6_K:
      pack_q6_k(static_cast<const BlockQ6_K*>(row), nb, out);
      break;
    default:
      TOY_CHECK(false, "no integer dot product for ", dtype_name(type));
  }
  pad_weight_row(type, n, out);
}

void pad_weight_row(DType type, int64_t n, const PackedWeightRow& out) {
  const int64_t np = packed_length(n);
  if (np > n) {  // zero padding up to the chunk size
    std::memset(out.u + n, 0, static_cast<size_t>(np - n));
    std::memset(out.scale + n / 4, 0, static_cast<size_t>(np - n) / 4 * sizeof(float));
    if (int_dot_traits(type).has_mins)
      std::memset(out.min + n / 16, 0, static_cast<size_t>(np - n) / 16 * sizeof(float));
  }
}

size_t packed_act_row_bytes(int64_t n) {
  const size_t np = static_cast<size_t>(packed_length(n));
  return align64(np) + 2 * align64(np) + align64(np / 4);
}

PackedActRow packed_act_row_at(uint8_t* memory, int64_t n) {
  const size_t np = static_cast<size_t>(packed_length(n));
  PackedActRow row;
  row.q = reinterpret_cast<int8_t*>(memory);
  row.scale = reinterpret_cast<float*>(memory + align64(np));
  row.start = reinterpret_cast<int32_t*>(memory + 2 * align64(np));
  row.sum = reinterpret_cast<float*>(memory + 3 * align64(np));
  return row;
}

namespace {}  // namespace

int quantize_block32(const float* x, int8_t* q, float* d_out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  int sum = 0;
  for (int j = 0; j < 32; ++j) {
    q[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
    sum += q[j];
  }
  *d_out = amax / 127.0f;
  return sum;
}

void quantize_block256(const float* x, int8_t* q, float* d_out, int sums[16]) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 256; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax == 0.0f) {
    std::memset(q, 0, 256);
    for (int g = 0; g < 16; ++g) sums[g] = 0;
    *d_out = 0.0f;
    return;
  }
  const float iscale = -127.0f / max;
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) {
      const int v = std::min(127, static_cast<int>(std::nearbyint(iscale * x[16 * g + l])));
      q[16 * g + l] = static_cast<int8_t>(v);
      sum += v;
    }
    sums[g] = sum;
  }
  *d_out = 1.0f / iscale;
}

namespace {

// start[lane] = -z * (sum of the lane's 4 codes), for lanes [first, first + count).
void fill_start(const int8_t* q, int32_t* start, int64_t first_lane, int64_t count, int z) {
  for (int64_t l = first_lane; l < first_lane + count; ++l) {
    const int8_t* c = q + 4 * l;
    start[l] = -z * (c[0] + c[1] + c[2] + c[3]);
  }
}

}  // namespace

void pack_activation_row(DType weight_type, const float* x, int64_t n, const PackedActRow& out) {
  pack_activation_row_using({quantize_block32, quantize_block256}, weight_type, x, n, out);
}

void pack_activation_row_using(const ActBlockQuantizers& quantize, DType weight_type,
                               const float* x, int64_t n, const PackedActRow& out) {
  const IntDotTraits traits = int_dot_traits(weight_type);
  const int64_t np = packed_length(n);
  if (traits.act == ActQuant::Q8_K) {
    int sums[16];
    for (int64_t b = 0; b < n / 256; ++b) {
      float d;
      quantize.block256(x + 256 * b, out.q + 256 * b, &d, sums);
      fill_lanes(out.scale, 256 * b, 256, d);
      for (int g = 0; g < 16; ++g) out.sum[16 * b + g] = d * static_cast<float>(sums[g]);
    }
  } else {
    for (int64_t b = 0; b < n / 32; ++b) {
      float d;
      const int sum = quantize.block32(x + 32 * b, out.q + 32 * b, &d);
      fill_lanes(out.scale, 32 * b, 32, half_to_float(float_to_half(d)));
      if (traits.act == ActQuant::Q8_1) {
        // ggml's block_q8_1 keeps s = d * sum as an f16 per block of 32: put it in the
        // first group of 16 and zero in the second (both groups share the weight's m).
        out.sum[2 * b] = half_to_float(float_to_half(d * static_cast<float>(sum)));
        out.sum[2 * b + 1] = 0.0f;
      }
    }
  }
  if (np > n) {
    std::memset(out.q + n, 0, static_cast<size_t>(np - n));
    std::memset(out.scale + n / 4, 0, static_cast<size_t>(np - n) / 4 * sizeof(float));
    std::memset(out.sum + n / 16, 0, static_cast<size_t>(np - n) / 16 * sizeof(float));
  }
  if (traits.zero_point != 0) {
    fill_start(out.q, out.start, 0, np / 4, traits.zero_point);
  } else {
    std::memset(out.start, 0, static_cast<size_t>(np / 4) * sizeof(int32_t));
  }
}

}  // namespace toy::quant
