// Scalar reference dequantization for every supported ggml type.
//
// Bit-exact with ggml's dequantize_row_* (ggml-quants.c): the float operations are
// done in the same order, in single precision, without fused multiply-adds (the
// project compiles in ISO C++ mode, where GCC does not contract a*b+c).
#include <cstring>

#include "quant/fp16.h"
#include "quant/rows.h"

namespace toy::quant {

void dequantize_row_f16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void dequantize_row_bf16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  constexpr int kHalf = kQK4_0 / 2;
  for (int64_t b = 0; b < n / kQK4_0; ++b, y += kQK4_0) {
    const float d = f16_to_f32(x[b].d);
    for (int j = 0; j < kHalf; ++j) {
      const int low = (x[b].qs[j] & 0x0F) - 8;
      const int high = (x[b].qs[j] >> 4) - 8;
      y[j] = static_cast<float>(low) * d;
      y[j + kHalf] = static_cast<float>(high) * d;
    }
  }
}

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n) {
  constexpr int kHalf = kQK4_1 / 2;
  for (int64_t b = 0; b < n / kQK4_1; ++b, y += kQK4_1) {
    const float d = f16_to_f32(x[b].d);
    const float m = f16_to_f32(x[b].m);
    for (int j = 0; j < kHalf; ++j) {
      const int low = x[b].qs[j] & 0x0F;
      const int high = x[b].qs[j] >> 4;
      y[j] = static_cast<float>(low) * d + m;
      y[j + kHalf] = static_cast<float>(high) * d + m;
    }
  }
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
  constexpr int kHalf = kQK5_0 / 2;
  for (int64_t b = 0; b < n / kQK5_0; ++b, y += kQK5_0) {
    const float d = f16_to_f32(x[b].d);
    uint32_t qh;  // bit j = fifth bit of element j
    std::memcpy(&qh, x[b].qh, sizeof(qh));
    for (int j = 0; j < kHalf; ++j) {
      const int high_bit_low = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int high_bit_high = static_cast<int>((qh >> (j + 12)) & 0x10);
      const int low = ((x[b].qs[j] & 0x0F) | high_bit_low) - 16;
      const int high = ((x[b].qs[j] >> 4) | high_bit_high) - 16;
      y[j] = static_cast<float>(low) * d;
      y[j + kHalf] = static_cast<float>(high) * d;
    }
  }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
  constexpr int kHalf = kQK5_1 / 2;
  for (int64_t b = 0; b < n / kQK5_1; ++b, y += kQK5_1) {
    const float d = f16_to_f32(x[b].d);
    const float m = f16_to_f32(x[b].m);
    uint32_t qh;
    std::memcpy(&qh, x[b].qh, sizeof(qh));
    for (int j = 0; j < kHalf; ++j) {
      const int high_bit_low = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int high_bit_high = static_cast<int>((qh >> (j + 12)) & 0x10);
      const int low = (x[b].qs[j] & 0x0F) | high_bit_low;
      const int high = (x[b].qs[j] >> 4) | high_bit_high;
      y[j] = static_cast<float>(low) * d + m;
      y[j + kHalf] = static_cast<float>(high) * d + m;
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b, y += kQK8_0) {
    const float d = f16_to_f32(x[b].d);
    for (int j = 0; j < kQK8_0; ++j) y[j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

void dequantize_row_q2_k(const BlockQ2_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = f16_to_f32(x[b].d);
    const float dmin = f16_to_f32(x[b].dmin);
    const uint8_t* q = x[b].qs;
    int scale_index = 0;
    // Two halves of 128; each 32-byte run of qs holds 4 groups of 32 at bit shifts 0,2,4,6,
    // and every group of 32 has two sub-block scales (16 elements each).
    for (int half = 0; half < kQK_K; half += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = x[b].scales[scale_index++];
          const float dl = d * static_cast<float>(sc & 0xF);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) {
            const int v = (q[l + 16 * part] >> shift) & 3;
            *y++ = dl * static_cast<float>(v) - ml;
          }
        }
      }
    }
  }
}

// Unpacks the sixteen 6-bit Q3_K scales (stored biased by 32) from their 12 bytes:
// low nibbles of bytes 0..7 are scales 0..7, high nibbles scales 8..15, and bytes 8..11
// carry the top 2 bits (scale j's in byte 8 + j % 4 at bit 2 * (j / 4)).
static void unpack_q3_k_scales(const uint8_t* packed, int8_t* scales) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (packed[j] & 0xF) : (packed[j - 8] >> 4);
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

void dequantize_row_q3_k(const BlockQ3_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d_all = f16_to_f32(x[b].d);
    int8_t scales[16];
    unpack_q3_k_scales(x[b].scales, scales);
    const uint8_t* q = x[b].qs;
    const uint8_t* hmask = x[b].hmask;
    uint8_t mask = 1;
    int scale_index = 0;
    for (int half = 0; half < kQK_K; half += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, mask <<= 1) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * static_cast<float>(scales[scale_index++]);
          for (int l = 0; l < 16; ++l) {
            const int i = l + 16 * part;
            const int v = ((q[i] >> shift) & 3) - ((hmask[i] & mask) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = f16_to_f32(x[b].d);
    const float dmin = f16_to_f32(x[b].dmin);
    const uint8_t* q = x[b].qs;
    // Each 32 bytes of qs hold two sub-blocks of 32: low nibbles, then high nibbles.
    for (int sub = 0; sub < 8; sub += 2, q += 32) {
      uint8_t sc, m;
      get_scale_min_k4(sub, x[b].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      get_scale_min_k4(sub + 1, x[b].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = f16_to_f32(x[b].d);
    const float dmin = f16_to_f32(x[b].dmin);
    const uint8_t* ql = x[b].qs;
    const uint8_t* qh = x[b].qh;
    uint8_t u1 = 1, u2 = 2;  // qh bit of the low / high sub-block of this pair
    for (int sub = 0; sub < 8; sub += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      get_scale_min_k4(sub, x[b].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      get_scale_min_k4(sub + 1, x[b].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int v = (ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0);
        *y++ = d1 * static_cast<float>(v) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int v = (ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0);
        *y++ = d2 * static_cast<float>(v) - m2;
      }
    }
  }
}

void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = f16_to_f32(x[b].d);
    const uint8_t* ql = x[b].ql;
    const uint8_t* qh = x[b].qh;
    const int8_t* sc = x[b].scales;
    // Each half of 128 elements: 64 bytes of ql (low nibbles of elements l and l+32 in
    // bytes l and l+32, high nibbles for l+64 and l+96) and 32 bytes of qh (2 bits each).
    for (int half = 0; half < kQK_K; half += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void dequantize_row_q8_k(const BlockQ8_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    for (int j = 0; j < kQK_K; ++j) y[j] = x[b].d * static_cast<float>(x[b].qs[j]);
  }
}

}  // namespace toy::quant
