// exp_shifted (AVX-512 polynomial in native builds, std::exp per element without
// AVX-512F) against double-precision exp over odd lengths, so the vector body,
// the masked tail and the portable fallback are all checked against one reference.
#include "kernels/vexp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace toy {
namespace {

// The header promises < 2e-7 relative error before the final rounding, so the
// float result is within 2e-7 + one rounding (2^-24 ≈ 6e-8) of the exact value.
constexpr double kRelTol = 2e-7 + 6e-8;

TEST(Vexp, ExpShiftedMatchesDoubleExpOverOddLengths) {
  std::mt19937 rng(7);
  // Exponents that stay normal in float: expf's whole normal range.
  std::uniform_real_distribution<float> dist(-87.0f, 88.0f);
  for (int64_t n : {1, 7, 15, 16, 17, 31, 33, 100}) {
    std::vector<float> x(static_cast<size_t>(n)), y(x.size());  // (n)
    for (float& v : x) v = dist(rng);
    const float shift = 0.25f;
    exp_shifted(y.data(), x.data(), shift, n);
    for (int64_t i = 0; i < n; ++i) {
      const double want = std::exp(double(x[i] - shift));
      ASSERT_NEAR(y[i], want, kRelTol * want) << "n=" << n << " i=" << i << " x=" << x[i];
    }
  }
}

TEST(Vexp, ExpShiftedInPlaceKeepsTheMaximumAtExactlyOne) {
  // Softmax calls exp_shifted(p, p, max, n): the maximum must map to exactly 1
  // and far-below-max scores to 0 or a denormal (the documented underflow), on
  // both paths.
  std::vector<float> p = {3.0f, -200.0f, 1.0f, 3.0f, -1000.0f};  // (5)
  exp_shifted(p.data(), p.data(), 3.0f, static_cast<int64_t>(p.size()));
  EXPECT_EQ(p[0], 1.0f);
  EXPECT_EQ(p[3], 1.0f);
  EXPECT_GE(p[1], 0.0f);
  EXPECT_LT(p[1], std::numeric_limits<float>::min());
  EXPECT_GE(p[4], 0.0f);
  EXPECT_LT(p[4], std::numeric_limits<float>::min());
  EXPECT_NEAR(p[2], std::exp(-2.0), kRelTol * std::exp(-2.0));
}

}  // namespace
}  // namespace toy
