// Round trips on synthetic data for every type quantize_row produces, over odd numbers
// of blocks: error bounds, idempotence, special inputs (zeros, constants, huge values,
// outliers, non-finite values) and the block layouts themselves.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace toy::quant {
namespace {

struct TypeCase {
  DType type;
  double max_gaussian_error;  // relative RMS error bound on N(0,1) data
  bool idempotent;            // quantize(dequantize(q)) == q bit for bit
};

// Bounds are ~1.3x what the types achieve on Gaussian data (the fixture test holds the
// tight bounds against llama.cpp). Idempotence: the max-scaled types re-derive exactly
// the same scale from their own output; the searched and offset types may pick a
// slightly different (equally good) scale, checked approximately below.
const TypeCase kCases[] = {
    {DType::F32, 0.0, true},    {DType::F16, 0.0004, true},  {DType::BF16, 0.003, true},
    {DType::Q8_0, 0.01, true},  {DType::Q4_0, 0.13, true},   {DType::Q4_1, 0.11, false},
    {DType::Q5_0, 0.065, true}, {DType::Q5_1, 0.055, false}, {DType::Q8_K, 0.008, true},
    {DType::Q2_K, 0.45, false}, {DType::Q3_K, 0.22, false},  {DType::Q4_K, 0.1, false},
    {DType::Q5_K, 0.05, false}, {DType::Q6_K, 0.025, false},
};

std::string case_name(const ::testing::TestParamInfo<TypeCase>& info) {
  return std::string(dtype_name(info.param.type));
}

// An odd number of blocks (or an odd length for the plain types).
int64_t odd_length(DType type, int64_t blocks = 5) {
  const int64_t block = dtype_info(type).block_size;
  return block == 1 ? 257 : blocks * block;
}

std::vector<float> gaussian(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

std::vector<uint8_t> quantize(DType type, const std::vector<float>& x,
                              const float* importance = nullptr) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(static_cast<size_t>(row_bytes(type, n)));
  quantize_row(type, x.data(), q.data(), n, importance);
  return q;
}

std::vector<float> dequantize(DType type, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(type, q.data(), y.data(), n);
  return y;
}

double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
    ref += static_cast<double>(x[i]) * x[i];
  }
  return ref > 0 ? std::sqrt(err / ref) : std::sqrt(err);
}

bool all_finite(const std::vector<float>& y) {
  for (float v : y)
    if (!std::isfinite(v)) return false;
  return true;
}

class RoundTrip : public ::testing::TestWithParam<TypeCase> {};

TEST_P(RoundTrip, GaussianErrorIsBounded) {
  const TypeCase& c = GetParam();
  ASSERT_TRUE(can_quantize(c.type));
  ASSERT_TRUE(can_dequantize(c.type));
  for (int64_t blocks : {1, 3, 7}) {
    const int64_t n = odd_length(c.type, blocks);
    const auto x = gaussian(n, 1234 + static_cast<uint32_t>(blocks));
    const auto y = dequantize(c.type, quantize(c.type, x), n);
    const double error = relative_rms_error(x, y);
    EXPECT_LE(error, c.max_gaussian_error) << "blocks " << blocks;
    if (c.type != DType::F32) {
      EXPECT_GT(error, 0.0);
    }
  }
}

TEST_P(RoundTrip, RequantizingTheDequantizedRowIsStable) {
  const TypeCase& c = GetParam();
  const int64_t n = odd_length(c.type);
  const auto x = gaussian(n, 99);
  const auto q1 = quantize(c.type, x);
  const auto y1 = dequantize(c.type, q1, n);
  const auto q2 = quantize(c.type, y1);
  const auto y2 = dequantize(c.type, q2, n);
  if (c.idempotent) {
    EXPECT_EQ(q1, q2);
    EXPECT_EQ(y1, y2);
  } else {
    // The values are already on a grid the type can represent: a second pass may move
    // to a neighbouring grid, but it must cost far less than the first quantization.
    const double first = relative_rms_error(x, y1);
    const double second = relative_rms_error(y1, y2);
    EXPECT_LE(second, 0.5 * first) << "first " << first << " second " << second;
  }
}

TEST_P(RoundTrip, ZerosStayExactlyZero) {
  const TypeCase& c = GetParam();
  const int64_t n = odd_length(c.type);
  const std::vector<float> x(static_cast<size_t>(n), 0.0f);
  const auto y = dequantize(c.type, quantize(c.type, x), n);
  for (float v : y) ASSERT_EQ(v, 0.0f);
}

TEST_P(RoundTrip, ConstantRowsAreReproduced) {
  const TypeCase& c = GetParam();
  const int64_t n = odd_length(c.type);
  // (Much smaller constants push the Q6_K super-scale, value / 4096, into F16's
  // subnormals, where ggml's format itself loses precision.)
  for (float value : {0.37f, -2.5f, 0.05f}) {
    const std::vector<float> x(static_cast<size_t>(n), value);
    const auto y = dequantize(c.type, quantize(c.type, x), n);
    ASSERT_TRUE(all_finite(y));
    // Every type represents a constant block to within its scale's F16 precision.
    EXPECT_LE(relative_rms_error(x, y), 0.02) << value;
  }
}

TEST_P(RoundTrip, HugeValuesGiveFiniteResults) {
  const TypeCase& c = GetParam();
  const int64_t n = odd_length(c.type);
  for (float scale : {3e3f, 1e6f, 1e30f}) {
    auto x = gaussian(n, 5, scale);
    const auto y = dequantize(c.type, quantize(c.type, x), n);
    if (c.type == DType::F16) {
      // Beyond the half range, IEEE rounding gives inf: the correct F16 answer.
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_EQ(std::isinf(y[i]), std::fabs(x[i]) >= 65520.f) << x[i];
      continue;
    }
    // Block scales beyond F16's range saturate, so the result is clipped but finite.
    ASSERT_TRUE(all_finite(y)) << "scale " << scale;
    if (scale == 3e3f) {
      // Scales and mins still fit in F16: the usual accuracy.
      EXPECT_LE(relative_rms_error(x, y), 1.1 * c.max_gaussian_error) << scale;
    }
  }
}

TEST_P(RoundTrip, OneOutlierIsKeptAndTheRowStaysFinite) {
  const TypeCase& c = GetParam();
  const int64_t n = odd_length(c.type);
  auto x = gaussian(n, 11, 0.02f);
  const size_t outlier = x.size() / 2 + 3;
  x[outlier] = 40.0f;
  const auto y = dequantize(c.type, quantize(c.type, x), n);
  ASSERT_TRUE(all_finite(y));
  // The outlier dominates its block's scale, so it is represented well (within 1/7 for the
  // 2-bit type, ~1/15 or better for the rest); everything else only has to stay small.
  EXPECT_NEAR(y[outlier], 40.0f, c.type == DType::Q2_K ? 6.0f : 3.0f);
  for (size_t i = 0; i < x.size(); ++i)
    if (i != outlier) {
      ASSERT_LE(std::fabs(y[i]), 3.0f) << i;
    }
}

TEST_P(RoundTrip, NonFiniteInputsDoNotCrash) {
  // Garbage in, garbage out, but no undefined behaviour (checked by the sanitizer build):
  // every float -> int conversion is clamped.
  const TypeCase& c = GetParam();
  const int64_t n = odd_length(c.type);
  auto x = gaussian(n, 3);
  x[1] = NAN;
  x[x.size() / 2] = INFINITY;
  x[x.size() - 1] = -INFINITY;
  const auto q = quantize(c.type, x);
  const auto y = dequantize(c.type, q, n);
  EXPECT_EQ(y.size(), x.size());
}

TEST_P(RoundTrip, RowLengthMustBeAMultipleOfTheBlock) {
  const TypeCase& c = GetParam();
  const int64_t block = dtype_info(c.type).block_size;
  if (block == 1) GTEST_SKIP() << "plain types take any length";
  std::vector<float> x(static_cast<size_t>(block + 1), 1.0f);
  std::vector<uint8_t> q(static_cast<size_t>(row_bytes(c.type, 2 * block)));
  EXPECT_THROW(quantize_row(c.type, x.data(), q.data(), block + 1), Error);
  EXPECT_THROW(dequantize_row(c.type, q.data(), x.data(), block + 1), Error);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTrip, ::testing::ValuesIn(kCases), case_name);

TEST(Blocks, SizesMatchTheDtypeTable) {
  EXPECT_EQ(sizeof(BlockQ4_0), dtype_info(DType::Q4_0).type_size);
  EXPECT_EQ(sizeof(BlockQ4_1), dtype_info(DType::Q4_1).type_size);
  EXPECT_EQ(sizeof(BlockQ5_0), dtype_info(DType::Q5_0).type_size);
  EXPECT_EQ(sizeof(BlockQ5_1), dtype_info(DType::Q5_1).type_size);
  EXPECT_EQ(sizeof(BlockQ8_0), dtype_info(DType::Q8_0).type_size);
  EXPECT_EQ(sizeof(BlockQ2_K), dtype_info(DType::Q2_K).type_size);
  EXPECT_EQ(sizeof(BlockQ3_K), dtype_info(DType::Q3_K).type_size);
  EXPECT_EQ(sizeof(BlockQ4_K), dtype_info(DType::Q4_K).type_size);
  EXPECT_EQ(sizeof(BlockQ5_K), dtype_info(DType::Q5_K).type_size);
  EXPECT_EQ(sizeof(BlockQ6_K), dtype_info(DType::Q6_K).type_size);
  EXPECT_EQ(sizeof(BlockQ8_K), dtype_info(DType::Q8_K).type_size);
}

TEST(Blocks, UnsupportedTypesAreRejected) {
  EXPECT_FALSE(can_dequantize(DType::IQ2_XXS));
  EXPECT_FALSE(can_quantize(DType::Q8_1));
  std::vector<uint8_t> q(66);
  std::vector<float> y(256);
  EXPECT_THROW(dequantize_row(DType::IQ2_XXS, q.data(), y.data(), 256), Error);
  EXPECT_THROW(quantize_row(DType::I32, y.data(), q.data(), 1), Error);
}

TEST(Blocks, Q4_0HandBuiltBlockDecodes) {
  // d = 0.5; element j (low nibble of byte j) = j % 16, element j+16 (high nibble) = 15 - j.
  BlockQ4_0 block{};
  block.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) block.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(DType::Q4_0, &block, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j - 8));
    EXPECT_EQ(y[j + 16], 0.5f * static_cast<float>(7 - j));
  }
}

TEST(Blocks, Q4_KScalePackingRoundTrips) {
  // Every (scale, min) pair in 0..63 for each of the 8 sub-blocks survives packing.
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    int scales[8], mins[8];
    for (int j = 0; j < 8; ++j) {
      scales[j] = static_cast<int>(rng() % 64);
      mins[j] = static_cast<int>(rng() % 64);
    }
    // Build a block whose every sub-block is constant level 1: x = d*sc - dmin*m.
    BlockQ4_K block{};
    block.d = f32_to_f16(1.0f);
    block.dmin = f32_to_f16(0.25f);
    for (int j = 0; j < 8; ++j) {
      if (j < 4) {
        block.scales[j] = static_cast<uint8_t>(scales[j]);
        block.scales[j + 4] = static_cast<uint8_t>(mins[j]);
      } else {
        block.scales[j + 4] = static_cast<uint8_t>((scales[j] & 0xF) | ((mins[j] & 0xF) << 4));
        block.scales[j - 4] |= static_cast<uint8_t>((scales[j] >> 4) << 6);
        block.scales[j] |= static_cast<uint8_t>((mins[j] >> 4) << 6);
      }
    }
    std::memset(block.qs, 0x11, sizeof(block.qs));
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, block.scales, &sc, &m);
      ASSERT_EQ(sc, scales[j]);
      ASSERT_EQ(m, mins[j]);
    }
    float y[kQK_K];
    dequantize_row(DType::Q4_K, &block, y, kQK_K);
    for (int j = 0; j < 8; ++j)
      ASSERT_EQ(y[32 * j + 5], static_cast<float>(scales[j]) - 0.25f * mins[j]) << j;
  }
}

TEST(Blocks, Q8_KBlockSumsMatchTheQuants) {
  const auto x = gaussian(3 * kQK_K, 21);
  std::vector<BlockQ8_K> q(3);
  quantize_row(DType::Q8_K, x.data(), q.data(), 3 * kQK_K);
  for (const BlockQ8_K& block : q) {
    int max_abs = 0;
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) {
        sum += block.qs[16 * g + i];
        max_abs = std::max(max_abs, std::abs(static_cast<int>(block.qs[16 * g + i])));
      }
      EXPECT_EQ(block.bsums[g], sum);
    }
    EXPECT_EQ(max_abs, 127);  // the largest element maps to +-127
  }
}

TEST(Importance, WeightedElementsGetSmallerErrors) {
  // With importance concentrated on the first half of every sub-block, the K-quants
  // must fit that half better than without importance.
  for (DType type : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const int64_t n = 5 * kQK_K;
    const auto x = gaussian(n, 77);
    std::vector<float> importance(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) importance[static_cast<size_t>(i)] = (i % 16) < 8 ? 50.f : 1.f;
    const auto plain = dequantize(type, quantize(type, x), n);
    const auto weighted = dequantize(type, quantize(type, x, importance.data()), n);
    double plain_error = 0, weighted_error = 0;
    for (int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<size_t>(i);
      plain_error += importance[k] * (plain[k] - x[k]) * (plain[k] - x[k]);
      weighted_error += importance[k] * (weighted[k] - x[k]) * (weighted[k] - x[k]);
    }
    EXPECT_LT(weighted_error, plain_error) << dtype_name(type);
  }
}

}  // namespace
}  // namespace toy::quant
