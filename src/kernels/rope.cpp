#include "kernels/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace toy {
namespace {

// The dimension index at which `n_rotations` full turns fit the original context
// (ggml's ggml_rope_yarn_corr_dim).
float yarn_corr_dim(int64_t n_rot, int64_t n_ctx_orig, float n_rotations, float base) {
  return static_cast<float>(n_rot) *
         std::log(static_cast<float>(n_ctx_orig) /
                  (n_rotations * 2.0f * std::numbers::pi_v<float>)) /
         (2.0f * std::log(base));
}

struct YarnDims {
  float low = 0.0f, high = 0.0f;
};

YarnDims yarn_dims(const RopeParams& p) {
  YarnDims d;
  const float start = std::floor(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_fast, p.freq_base));
  const float end = std::ceil(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_slow, p.freq_base));
  d.low = std::max(0.0f, start);
  d.high = std::min(static_cast<float>(p.n_rot - 1), end);
  return d;
}

// 1 below `low`, 0 above `high`, linear between (pair index i = i0/2).
float yarn_ramp(const YarnDims& d, int64_t pair) {
  const float y = (static_cast<float>(pair) - d.low) / std::max(0.001f, d.high - d.low);
  return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

}  // namespace

void rope_angles(float* cos_out, float* sin_out, int64_t pos, const RopeParams& p) {
  TOY_CHECK(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= kMaxRopeDims, "n_rot ", p.n_rot);
  const YarnDims dims = p.yarn ? yarn_dims(p) : YarnDims{};
  // Like ggml: θ advances by a constant factor per pair, in float.
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < p.n_rot / 2; ++i) {
    const float factor = p.freq_factors ? p.freq_factors[i] : 1.0f;
    const float theta_extrap = theta / factor;
    const float theta_interp = p.freq_scale * theta_extrap;
    float angle = theta_interp;
    float mscale = p.attn_factor;
    if (p.yarn) {
      const float mix = yarn_ramp(dims, i);
      angle = theta_interp * (1.0f - mix) + theta_extrap * mix;
      mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
    }
    cos_out[i] = std::cos(angle) * mscale;
    sin_out[i] = std::sin(angle) * mscale;
    theta *= theta_scale;
  }
}

void rope_forward(float* x, int64_t T, int64_t n_heads, int64_t pos0, const RopeParams& p) {
  TOY_CHECK(p.n_rot <= p.head_dim, "n_rot ", p.n_rot, " > head_dim ", p.head_dim);
  float cos_theta[kMaxRopeDims / 2];
  float sin_theta[kMaxRopeDims / 2];
  const int64_t half = p.n_rot / 2;
  // Pair i is (x[a], x[b]) with a, b from the layout.
  const int64_t stride = p.mode == RopeMode::AdjacentPairs ? 2 : 1;
  const int64_t offset = p.mode == RopeMode::AdjacentPairs ? 1 : half;
  for (int64_t t = 0; t < T; ++t) {
    rope_angles(cos_theta, sin_theta, pos0 + t, p);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* head = x + (t * n_heads + h) * p.head_dim;
      for (int64_t i = 0; i < half; ++i) {
        float* a = head + i * stride;
        float* b = a + offset;
        const float x0 = *a, x1 = *b;
        *a = x0 * cos_theta[i] - x1 * sin_theta[i];
        *b = x0 * sin_theta[i] + x1 * cos_theta[i];
      }
    }
  }
}

void rope_reference(float* x, int64_t T, int64_t n_heads, int64_t pos0, const RopeParams& p) {
  const int64_t half = p.n_rot / 2;
  double low = 0.0, high = 0.0;
  if (p.yarn) {
    auto corr = [&](double n_rotations) {
      return double(p.n_rot) * std::log(double(p.n_ctx_orig) / (n_rotations * 2.0 * M_PI)) /
             (2.0 * std::log(double(p.freq_base)));
    };
    low = std::max(0.0, std::floor(corr(p.beta_fast)));
    high = std::min(double(p.n_rot - 1), std::ceil(corr(p.beta_slow)));
  }
  for (int64_t t = 0; t < T; ++t) {
    const double pos = double(pos0 + t);
    for (int64_t i = 0; i < half; ++i) {
      double theta_extrap = pos * std::pow(double(p.freq_base), -2.0 * double(i) / double(p.n_rot));
      if (p.freq_factors) theta_extrap /= p.freq_factors[i];
      const double theta_interp = double(p.freq_scale) * theta_extrap;
      double angle = theta_interp, mscale = p.attn_factor;
      if (p.yarn) {
        const double y = (double(i) - low) / std::max(0.001, high - low);
        const double ramp = 1.0 - std::min(1.0, std::max(0.0, y));
        angle = theta_interp * (1.0 - ramp) + theta_extrap * ramp;
        mscale *= 1.0 + 0.1 * std::log(1.0 / double(p.freq_scale));
      }
      const double c = std::cos(angle) * mscale, s = std::sin(angle) * mscale;
      for (int64_t h = 0; h < n_heads; ++h) {
        float* head = x + (t * n_heads + h) * p.head_dim;
        const int64_t a = p.mode == RopeMode::AdjacentPairs ? 2 * i : i;
        const int64_t b = p.mode == RopeMode::AdjacentPairs ? 2 * i + 1 : i + half;
        const double x0 = head[a], x1 = head[b];
        head[a] = static_cast<float>(x0 * c - x1 * s);
        head[b] = static_cast<float>(x0 * s + x1 * c);
      }
    }
  }
}

}  // namespace toy
