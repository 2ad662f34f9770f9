// rmsnorm, softmax, softcap and the gated activations against double-precision formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/activations.h"
#include "kernels/rmsnorm.h"

namespace toy {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(RmsNorm, MatchesFormula) {
  for (int64_t n : {1, 7, 64, 127}) {
    const int64_t rows = 3;
    const auto x = random_values(static_cast<size_t>(rows * n), 1, 3.0f);
    const auto w = random_values(static_cast<size_t>(n), 2);
    std::vector<float> y(x.size());
    rmsnorm_forward(y.data(), x.data(), w.data(), rows, n, 1e-5f);
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
      const double scale = 1.0 / std::sqrt(ss / double(n) + 1e-5);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(y[r * n + i], x[r * n + i] * scale * w[i], 1e-5) << n << " " << r << " " << i;
    }
  }
}

TEST(RmsNorm, InPlaceWithoutWeight) {
  std::vector<float> x = {3, 4};
  rmsnorm_forward(x.data(), x.data(), nullptr, 1, 2, 0.0f);
  const double rms = std::sqrt((9.0 + 16.0) / 2.0);
  EXPECT_NEAR(x[0], 3 / rms, 1e-6);
  EXPECT_NEAR(x[1], 4 / rms, 1e-6);
}

TEST(Softmax, MatchesFormulaAndSumsToOne) {
  auto x = random_values(37, 3, 20.0f);
  const auto in = x;
  softmax(x.data(), static_cast<int64_t>(x.size()));
  double max = in[0], sum = 0;
  for (float v : in) max = std::max<double>(max, v);
  for (float v : in) sum += std::exp(double(v) - max);
  double total = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(x[i], std::exp(double(in[i]) - max) / sum, 1e-7);
    total += x[i];
  }
  EXPECT_NEAR(total, 1.0, 1e-6);
}

TEST(Softmax, LargeLogitsDoNotOverflow) {
  std::vector<float> x = {1000.0f, 1000.0f, -1000.0f};
  softmax(x.data(), 3);
  EXPECT_FLOAT_EQ(x[0], 0.5f);
  EXPECT_FLOAT_EQ(x[1], 0.5f);
  EXPECT_FLOAT_EQ(x[2], 0.0f);
}

TEST(Softcap, TanhScaled) {
  std::vector<float> x = {-100, -1, 0, 2, 30, 1000};
  const auto in = x;
  softcap(x.data(), static_cast<int64_t>(x.size()), 30.0f);
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_NEAR(x[i], 30.0 * std::tanh(double(in[i]) / 30.0), 1e-5);
}

TEST(Activations, GatedSiluAndGelu) {
  const auto gate = random_values(33, 4, 6.0f), up = random_values(33, 5, 2.0f);
  std::vector<float> out(33);
  gated_activation(out.data(), gate.data(), up.data(), 33, Activation::Silu);
  for (size_t i = 0; i < 33; ++i) {
    const double g = gate[i];
    EXPECT_NEAR(out[i], g / (1.0 + std::exp(-g)) * up[i], 1e-5);
  }
  gated_activation(out.data(), gate.data(), up.data(), 33, Activation::GeluTanh);
  for (size_t i = 0; i < 33; ++i) {
    const double g = gate[i];
    const double gelu =
        0.5 * g * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g)));
    EXPECT_NEAR(out[i], gelu * up[i], 1e-5);
  }
}

}  // namespace
}  // namespace toy
