#include "kernels/moe.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/error.h"
#include "kernels/activations.h"

namespace toy {

template <typename Real>
void moe_route(int32_t* ids, Real* weights, Real* logits, int64_t T, int64_t n_expert, int64_t k,
               bool renormalize) {
  TOY_CHECK(k > 0 && k <= n_expert, "top-", k, " of ", n_expert, " experts");
  for (int64_t t = 0; t < T; ++t) {
    Real* p = logits + t * n_expert;
    if constexpr (std::is_same_v<Real, float>) {
      softmax(p, n_expert);  // the inference kernel, so training routes as inference does
    } else {
      const Real max = *std::max_element(p, p + n_expert);
      Real sum = 0;
      for (int64_t e = 0; e < n_expert; ++e) sum += p[e] = std::exp(p[e] - max);
      for (int64_t e = 0; e < n_expert; ++e) p[e] /= sum;
    }
    int32_t* row_ids = ids + t * k;
    Real* row_w = weights + t * k;
    // Selection by repeated arg-max: k is small (<= 8 in practice).
    for (int64_t s = 0; s < k; ++s) {
      int32_t best = -1;
      for (int32_t e = 0; e < n_expert; ++e) {
        bool taken = false;
        for (int64_t r = 0; r < s; ++r) taken |= row_ids[r] == e;
        if (!taken && (best < 0 || p[e] > p[best])) best = e;
      }
      row_ids[s] = best;
      row_w[s] = p[best];
    }
    if (renormalize) {
      double sum = 0.0;
      for (int64_t s = 0; s < k; ++s) sum += row_w[s];
      for (int64_t s = 0; s < k; ++s) row_w[s] = static_cast<Real>(row_w[s] / sum);
    }
  }
}

template <typename Real>
void moe_route_backward(Real* d_logits, const Real* d_weights, const Real* probs,
                        const int32_t* ids, int64_t T, int64_t n_expert, int64_t k,
                        bool renormalize) {
  for (int64_t t = 0; t < T; ++t) {
    const Real* p = probs + t * n_expert;
    const int32_t* row_ids = ids + t * k;
    const Real* dw = d_weights + t * k;
    // ∂L/∂p of selected expert s (the only nonzero entries of ∂L/∂p): dw_s, or through
    // the renormalisation (dw_s − Σ_k dw_k·w_k) / S.
    double sum = 1.0, w_dot = 0.0;
    if (renormalize) {
      sum = 0.0;
      for (int64_t s = 0; s < k; ++s) sum += p[row_ids[s]];
      for (int64_t s = 0; s < k; ++s) w_dot += double(dw[s]) * (p[row_ids[s]] / sum);
    }
    auto dp = [&](int64_t s) { return (double(dw[s]) - w_dot) / sum; };
    // Σ_f p_f·∂L/∂p_f over the selected experts.
    double dot = 0.0;
    for (int64_t s = 0; s < k; ++s) dot += p[row_ids[s]] * dp(s);
    Real* dz = d_logits + t * n_expert;
    for (int64_t e = 0; e < n_expert; ++e) dz[e] += static_cast<Real>(-p[e] * dot);
    for (int64_t s = 0; s < k; ++s) dz[row_ids[s]] += static_cast<Real>(p[row_ids[s]] * dp(s));
  }
}

template void moe_route<float>(int32_t*, float*, float*, int64_t, int64_t, int64_t, bool);
template void moe_route<double>(int32_t*, double*, double*, int64_t, int64_t, int64_t, bool);
template void moe_route_backward<float>(float*, const float*, const float*, const int32_t*, int64_t,
                                        int64_t, int64_t, bool);
template void moe_route_backward<double>(double*, const double*, const double*, const int32_t*,
                                         int64_t, int64_t, int64_t, bool);

}  // namespace toy
