// rope_forward against the double-precision reference, in every mode the models use.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/rope.h"

namespace toy {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

void check(const RopeParams& p, int64_t T, int64_t n_heads, int64_t pos0) {
  const std::vector<float> x = random_values(static_cast<size_t>(T * n_heads * p.head_dim), 7);
  std::vector<float> ours = x, ref = x;
  rope_forward(ours.data(), T, n_heads, pos0, p);
  rope_reference(ref.data(), T, n_heads, pos0, p);
  // Angles grow with the position; float θ carries ~1e-7 relative error.
  EXPECT_LT(max_diff(ours, ref), 2e-5 * std::max<double>(1.0, double(pos0 + T) / 64.0));
  // Dims past n_rot are untouched.
  for (int64_t r = 0; r < T * n_heads; ++r)
    for (int64_t i = p.n_rot; i < p.head_dim; ++i)
      EXPECT_EQ(ours[r * p.head_dim + i], x[r * p.head_dim + i]);
}

RopeParams base(RopeMode mode, int64_t n_rot, int64_t head_dim) {
  RopeParams p;
  p.mode = mode;
  p.n_rot = n_rot;
  p.head_dim = head_dim;
  return p;
}

TEST(Rope, AdjacentPairs) {
  check(base(RopeMode::AdjacentPairs, 16, 16), 7, 3, 0);
}

TEST(Rope, HalfSplit) {
  check(base(RopeMode::HalfSplit, 32, 32), 5, 2, 11);
}

TEST(Rope, PartialRotation) {
  check(base(RopeMode::AdjacentPairs, 8, 24), 4, 3, 3);
  check(base(RopeMode::HalfSplit, 6, 10), 4, 3, 3);
}

TEST(Rope, LinearScaling) {
  RopeParams p = base(RopeMode::AdjacentPairs, 16, 16);
  p.freq_scale = 0.5f;
  check(p, 9, 2, 100);
}

TEST(Rope, Yarn) {
  RopeParams p = base(RopeMode::HalfSplit, 16, 16);
  p.freq_scale = 0.25f;
  p.yarn = true;
  p.n_ctx_orig = 32;
  check(p, 40, 2, 0);
  // The YaRN magnitude correction scales every rotated pair by 1 + 0.1·ln(4).
  std::vector<float> c(8), s(8);
  rope_angles(c.data(), s.data(), 5, p);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(std::hypot(c[i], s[i]), 1.0 + 0.1 * std::log(4.0), 1e-6);
}

TEST(Rope, FrequencyFactors) {
  RopeParams p = base(RopeMode::AdjacentPairs, 16, 32);
  p.freq_base = 500000.0f;
  const std::vector<float> factors = {1, 1, 1, 2, 2, 4, 8, 8};
  p.freq_factors = factors.data();
  check(p, 6, 2, 50);
  // A factor divides the angle: pair 7 at position 8 turns like pair 7 at position 1 unscaled.
  std::vector<float> c(8), s(8), c1(8), s1(8);
  rope_angles(c.data(), s.data(), 8, p);
  p.freq_factors = nullptr;
  rope_angles(c1.data(), s1.data(), 1, p);
  EXPECT_NEAR(c[7], c1[7], 1e-6);
  EXPECT_NEAR(s[7], s1[7], 1e-6);
}

TEST(Rope, PositionZeroIsIdentity) {
  const RopeParams p = base(RopeMode::HalfSplit, 8, 8);
  std::vector<float> x = random_values(8, 3), y = x;
  rope_forward(y.data(), 1, 1, 0, p);
  EXPECT_EQ(x, y);
}

}  // namespace
}  // namespace toy
