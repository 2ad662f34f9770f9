#include "kernels/rope_backward.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/error.h"

namespace toy {

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
      TOY_CHECK(!params.yarn, "the double-precision rope reference has no YaRN");
      for (int64_t i = 0; i < half; ++i) {
        double theta = double(p) *
                       std::pow(double(params.freq_base), -2.0 * double(i) / double(params.n_rot)) *
                       double(params.freq_scale);
        if (params.freq_factors) theta /= double(params.freq_factors[i]);
        c[i] = std::cos(theta) * double(params.attn_factor);
        s[i] = std::sin(theta) * double(params.attn_factor);
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
