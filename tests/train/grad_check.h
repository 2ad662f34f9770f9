// Central finite differences in double precision, the yardstick of every
// backward kernel and of the whole-model gradient checks.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace toy::testing {

// Deterministic N(0, scale) values.
inline std::vector<double> random_values(int64_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = normal(engine);
  return v;
}

inline std::vector<float> to_float(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());
}

// (loss(x + h·e_i) − loss(x − h·e_i)) / 2h, restoring x[i].
inline double central_difference(double& xi, const std::function<double()>& loss, double h = 1e-6) {
  const double saved = xi;
  xi = saved + h;
  const double plus = loss();
  xi = saved - h;
  const double minus = loss();
  xi = saved;
  return (plus - minus) / (2.0 * h);
}

// Compares analytic[i] with the finite difference of loss() in x[i] for the
// given indices (all when empty): |a − n| <= tol · max(1, |a|, |n|).
inline void expect_matches_finite_differences(std::vector<double>& x,
                                              const std::vector<double>& analytic,
                                              const std::function<double()>& loss,
                                              const std::string& what, double tol = 1e-7,
                                              std::vector<int64_t> indices = {}) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  if (indices.empty())
    for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) indices.push_back(i);
  for (int64_t i : indices) {
    const double numeric = central_difference(x[static_cast<size_t>(i)], loss);
    const double a = analytic[static_cast<size_t>(i)];
    const double scale = std::max({1.0, std::abs(a), std::abs(numeric)});
    EXPECT_LE(std::abs(a - numeric), tol * scale)
        << what << "[" << i << "]: analytic " << a << " vs finite difference " << numeric;
  }
}

// Σ r_i · y_i: a scalar loss whose gradient in y is r.
inline double weighted_sum(const std::vector<double>& r, const double* y) {
  double s = 0.0;
  for (size_t i = 0; i < r.size(); ++i) s += r[i] * y[i];
  return s;
}

}  // namespace toy::testing
