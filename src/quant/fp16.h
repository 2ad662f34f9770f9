// IEEE binary16 (F16) and bfloat16 (BF16) <-> F32 conversions, matching ggml bit for bit.
//
// F16 -> F32 and BF16 -> F32 are exact (every half/bfloat value is a float).
// F32 -> F16 and F32 -> BF16 round to nearest, ties to even, as ggml's
// ggml_compute_fp32_to_fp16 / ggml_compute_fp32_to_bf16 do. NaN handling follows
// ggml too: F16 NaN becomes the quiet NaN 0x7E00 (sign kept); BF16 NaN keeps its
// top payload bits and is forced quiet (bit 6 of the bfloat set).
#pragma once

#include <bit>
#include <cstdint>

namespace toy::quant {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) {  // inf / nan: keep the payload, widened
    return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  }
  if (exponent != 0) {  // normal: rebias 15 -> 127
    return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  }
  if (mantissa == 0) return std::bit_cast<float>(sign);  // +-0
  // Subnormal half: value = mantissa * 2^-24. Normalise it into a float.
  int shift = 0;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    ++shift;
  }
  mantissa &= 0x3FFu;
  const uint32_t float_exponent = static_cast<uint32_t>(127 - 15 + 1 - shift);
  return std::bit_cast<float>(sign | (float_exponent << 23) | (mantissa << 13));
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u;  // nan
  if (magnitude >= 0x47800000u) {
    // >= 65536 (2^16): inf, and finite values that round past the largest half
    // (65504). Values in [65520, 65536) also round to inf; handled below.
    return sign | 0x7C00u;
  }
  if (magnitude < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal or zero. The half
    // value is round(x * 2^24) units of 2^-24.
    if (magnitude < 0x33000000u) return sign;  // < 2^-25: rounds to zero (2^-25 ties to 0)
    const uint32_t exponent = magnitude >> 23;
    const uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;  // with the implicit bit
    // x = mantissa * 2^(exponent - 150); units of 2^-24 => shift right by 126 - exponent.
    const uint32_t shift = 126u - exponent;  // 14..24
    const uint32_t kept = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    uint32_t rounded = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
    return sign | static_cast<uint16_t>(rounded);  // may carry into the smallest normal: correct
  }
  // Normal range: rebias and round the 13 dropped mantissa bits to nearest even.
  // A carry out of the mantissa bumps the exponent, and out of the largest
  // exponent gives 0x7C00 (inf), both correct.
  const uint32_t rebased = magnitude - 0x38000000u;  // exponent 127 -> 15
  const uint32_t kept = rebased >> 13;
  const uint32_t rest = rebased & 0x1FFFu;
  const uint32_t rounded = kept + ((rest > 0x1000u || (rest == 0x1000u && (kept & 1u))) ? 1u : 0u);
  return sign | static_cast<uint16_t>(rounded);
}

// As f32_to_f16, but a finite or infinite value beyond the half range becomes the
// largest finite half (+-65504). Used for block scales, so that absurdly large weights
// give a clipped but finite block instead of an infinite one (ggml would store inf).
inline uint16_t f32_to_f16_saturate(float f) {
  const uint16_t h = f32_to_f16(f);
  if ((h & 0x7FFFu) == 0x7C00u) return static_cast<uint16_t>((h & 0x8000u) | 0x7BFFu);
  return h;
}

inline float bf16_to_f32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

inline uint16_t f32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
    return static_cast<uint16_t>((bits >> 16) | 64u);  // nan: truncate, force quiet
  }
  // Round to nearest even on the 16 dropped bits; overflow rounds to inf naturally.
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace toy::quant
