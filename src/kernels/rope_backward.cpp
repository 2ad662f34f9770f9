#include "kernels/rope_backward.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/error.h"

namespace toy {
namespace {

// The angle and cos/sin magnitude of pair i at position pos, in double: the
// formula of rope_angles (kernels/rope.h) with YaRN as in rope_reference.
void rope_angle_double(const RopeParams& p, int64_t pos, int64_t i, double& angle, double& mscale) {
  double theta_extrap =
      double(pos) * std::pow(double(p.freq_base), -2.0 * double(i) / double(p.n_rot));
  if (p.freq_factors) theta_extrap /= double(p.freq_factors[i]);
  const double theta_interp = double(p.freq_scale) * theta_extrap;
  angle = theta_interp;
  mscale = double(p.attn_factor);
  if (p.yarn) {
    auto corr = [&](double n_rotations) {
      return double(p.n_rot) * std::log(double(p.n_ctx_orig) / (n_rotations * 2.0 * M_PI)) /
             (2.0 * std::log(double(p.freq_base)));
    };
    const double low = std::max(0.0, std::floor(corr(p.beta_fast)));
    const double high = std::min(double(p.n_rot - 1), std::ceil(corr(p.beta_slow)));
    const double y = (double(i) - low) / std::max(0.001, high - low);
    const double ramp = 1.0 - std::min(1.0, std::max(0.0, y));
    angle = theta_interp * (1.0 - ramp) + theta_extrap * ramp;
    mscale *= 1.0 + 0.1 * std::log(1.0 / double(p.freq_scale));
  }
}

}  // namespace

template <typename Real>
RopeTable<Real> make_rope_table(int64_t n_pos, const RopeParams& params) {
  TOY_CHECK(params.n_rot % 2 == 0 && params.n_rot <= params.head_dim,
            "rope dimension count must be even and <= head_dim, got ", params.n_rot);
  RopeTable<Real> table;
  table.params = params;
  const int64_t half = params.n_rot / 2;
  table.cos.resize(static_cast<size_t>(n_pos * half));
  table.sin.resize(static_cast<size_t>(n_pos * half));
  for (int64_t p = 0; p < n_pos; ++p) {
    Real* c = table.cos.data() + p * half;
    Real* s = table.sin.data() + p * half;
    if constexpr (std::is_same_v<Real, float>) {
      rope_angles(c, s, p, params);
    } else {
      for (int64_t i = 0; i < half; ++i) {
        double angle, mscale;
        rope_angle_double(params, p, i, angle, mscale);
        c[i] = std::cos(angle) * mscale;
        s[i] = std::sin(angle) * mscale;
      }
    }
  }
  return table;
}

template <typename Real>
void rope_rotate(Real* x, const int32_t* positions, int64_t rows, int64_t n_heads,
                 const RopeTable<Real>& table, int direction) {
  const RopeParams& p = table.params;
  const int64_t half = p.n_rot / 2;
  const bool half_split = p.mode == RopeMode::HalfSplit;
  const int64_t n_pos = static_cast<int64_t>(table.cos.size()) / std::max<int64_t>(1, half);
  const Real sign = direction >= 0 ? Real(1) : Real(-1);
  for (int64_t r = 0; r < rows; ++r) {
    TOY_CHECK(positions[r] >= 0 && positions[r] < n_pos, "rope position ", positions[r],
              " outside the table of ", n_pos);
    const Real* c = table.cos.data() + int64_t(positions[r]) * half;
    const Real* s = table.sin.data() + int64_t(positions[r]) * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      Real* head = x + (r * n_heads + h) * p.head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = half_split ? i : 2 * i;
        const int64_t b = half_split ? i + half : 2 * i + 1;
        const Real x0 = head[a], x1 = head[b], sn = sign * s[i];
        head[a] = x0 * c[i] - x1 * sn;
        head[b] = x0 * sn + x1 * c[i];
      }
    }
  }
}

template RopeTable<float> make_rope_table<float>(int64_t, const RopeParams&);
template RopeTable<double> make_rope_table<double>(int64_t, const RopeParams&);
template void rope_rotate<float>(float*, const int32_t*, int64_t, int64_t, const RopeTable<float>&,
                                 int);
template void rope_rotate<double>(double*, const int32_t*, int64_t, int64_t,
                                  const RopeTable<double>&, int);

}  // namespace toy
