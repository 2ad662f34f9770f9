// F16 / BF16 conversions: exhaustive F16 -> F32 against an independent formula,
// F32 -> F16 round-to-nearest-even (against the F16C instruction where available, and
// on every tie between adjacent halves), and BF16 rounding and NaN handling.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>

#ifdef __F16C__
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized under -Wall; not our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "quant/fp16.h"

namespace toy::quant {
namespace {

// The IEEE binary16 value of `h`, computed in double from the definition.
double half_value(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  double v;
  if (exponent == 0) {
    v = std::ldexp(mantissa, -24);
  } else if (exponent == 31) {
    v = mantissa ? NAN : INFINITY;
  } else {
    v = std::ldexp(1024 + mantissa, exponent - 25);
  }
  return sign ? -v : v;
}

TEST(Fp16, EveryHalfConvertsExactly) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    const double expected = half_value(static_cast<uint16_t>(h));
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      // The payload is kept (widened), so converting back is the identity for quiet NaNs.
      EXPECT_EQ(std::bit_cast<uint32_t>(f) >> 13 & 0x3FF, h & 0x3FF) << std::hex << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), expected) << std::hex << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
    // Every non-NaN half survives the round trip.
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST(Fp16, SpecialValues) {
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.99f), 0x7BFF);  // below the midpoint to 2^16
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);   // the tie rounds to even: inf
  EXPECT_EQ(f32_to_f16(1e10f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-INFINITY), 0xFC00);
  EXPECT_EQ(f32_to_f16(NAN), 0x7E00);
  EXPECT_EQ(f32_to_f16(-NAN), 0xFE00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 1 ulp: even
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // tie 1 <-> 2 ulp: even (2)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16_saturate(1e10f), 0x7BFF);
  EXPECT_EQ(f32_to_f16_saturate(-INFINITY), 0xFBFF);
  EXPECT_EQ(f32_to_f16_saturate(1.0f), 0x3C00);
}

TEST(Fp16, TiesBetweenAdjacentHalvesRoundToEven) {
  // For each pair of adjacent positive finite halves, the float exactly between them
  // rounds to the one with an even mantissa, and one float ulp either side rounds to
  // the nearer one.
  for (uint16_t h = 0; h < 0x7BFF; ++h) {
    const float lo = f16_to_f32(h), hi = f16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : h;
    ASSERT_EQ(f32_to_f16(mid), even) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, INFINITY)), h + 1) << std::hex << h;
    ASSERT_EQ(f32_to_f16(-mid), even | 0x8000) << std::hex << h;
  }
}

#ifdef __F16C__
TEST(Fp16, MatchesF16cOnRandomFloats) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2'000'000; ++i) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(f)) continue;  // ggml maps every NaN to 0x7E00; F16C keeps the payload
    const auto hw = static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
    ASSERT_EQ(f32_to_f16(f), hw) << std::hex << std::bit_cast<uint32_t>(f);
  }
  // Concentrate on the half range too (random bits are mostly huge or tiny).
  std::uniform_real_distribution<float> uniform(-70000.f, 70000.f);
  for (int i = 0; i < 1'000'000; ++i) {
    const float f = uniform(rng) * std::ldexp(1.0f, -static_cast<int>(rng() % 30));
    ASSERT_EQ(f32_to_f16(f), static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)));
  }
}
#endif

TEST(Bf16, ShiftAndRoundToNearestEven) {
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  // 1 + 2^-8 is exactly between 1 (0x3F80) and 1 + 2^-7 (0x3F81): ties to even.
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F807FFFu)), 0x3F80);
  // The largest float rounds up to inf; inf stays inf.
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-INFINITY), 0xFF80);
  // NaN: truncated and forced quiet, never rounded into inf.
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7F800001u)), 0x7FC0);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0xFFC00000u)), 0xFFC0);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7FFFFFFFu)), 0x7FFF);
  // Every bfloat survives the round trip.
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    ASSERT_EQ(std::bit_cast<uint32_t>(f), h << 16);
    if (!std::isnan(f)) ASSERT_EQ(f32_to_bf16(f), h);
  }
}

}  // namespace
}  // namespace toy::quant
