#include "kernels/attention_backward.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace toy {
namespace {

template <typename Real>
Real dot(const Real* a, const Real* b, int64_t n) {
  Real sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void check_dims(const AttentionDims& d) {
  TOY_CHECK(d.n_head_kv > 0 && d.n_head % d.n_head_kv == 0, "n_head ", d.n_head,
            " is not a multiple of n_head_kv ", d.n_head_kv);
}

}  // namespace

template <typename Real>
void attention_forward_train(Real* out, Real* probs, const Real* q, const Real* k, const Real* v,
                             const AttentionDims& d, ThreadPool& pool) {
  check_dims(d);
  const int64_t T = d.n_pos, D = d.head_dim, group = d.n_head / d.n_head_kv;
  const int64_t q_stride = d.n_head * D, kv_stride = d.n_head_kv * D;
  const Real scale = Real(d.scale);
  pool.parallel_for(d.n_seq * d.n_head_kv, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / d.n_head_kv, g = task % d.n_head_kv;
      const Real* kb = k + b * T * kv_stride + g * D;
      const Real* vb = v + b * T * kv_stride + g * D;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t i = 0; i < T; ++i) {
          const Real* qi = q + (b * T + i) * q_stride + h * D;
          Real* p = probs + ((b * d.n_head + h) * T + i) * T;
          Real max_score = -INFINITY;
          for (int64_t j = 0; j <= i; ++j) {
            p[j] = scale * dot(qi, kb + j * kv_stride, D);
            max_score = std::max(max_score, p[j]);
          }
          Real sum = 0;
          for (int64_t j = 0; j <= i; ++j) {
            p[j] = std::exp(p[j] - max_score);
            sum += p[j];
          }
          const Real inv = Real(1) / sum;
          for (int64_t j = 0; j <= i; ++j) p[j] *= inv;
          for (int64_t j = i + 1; j < T; ++j) p[j] = 0;
          Real* oi = out + (b * T + i) * q_stride + h * D;
          std::fill(oi, oi + D, Real(0));
          for (int64_t j = 0; j <= i; ++j) {
            const Real* vj = vb + j * kv_stride;
            const Real pj = p[j];
            for (int64_t e = 0; e < D; ++e) oi[e] += pj * vj[e];
          }
        }
      }
    }
  });
}

template <typename Real>
void attention_backward(Real* dq, Real* dk, Real* dv, const Real* dout, const Real* q,
                        const Real* k, const Real* v, const Real* probs, const AttentionDims& d,
                        ThreadPool& pool) {
  check_dims(d);
  const int64_t T = d.n_pos, D = d.head_dim, group = d.n_head / d.n_head_kv;
  const int64_t q_stride = d.n_head * D, kv_stride = d.n_head_kv * D;
  const Real scale = Real(d.scale);
  pool.parallel_for(d.n_seq * d.n_head_kv, [&](int64_t begin, int64_t end) {
    std::vector<Real> ds(static_cast<size_t>(T));  // dS of one query row
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / d.n_head_kv, g = task % d.n_head_kv;
      const Real* kb = k + b * T * kv_stride + g * D;
      const Real* vb = v + b * T * kv_stride + g * D;
      Real* dkb = dk + b * T * kv_stride + g * D;
      Real* dvb = dv + b * T * kv_stride + g * D;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t i = 0; i < T; ++i) {
          const Real* p = probs + ((b * d.n_head + h) * T + i) * T;
          const Real* doi = dout + (b * T + i) * q_stride + h * D;
          const Real* qi = q + (b * T + i) * q_stride + h * D;
          Real* dqi = dq + (b * T + i) * q_stride + h * D;
          Real weighted = 0;  // Σ_j P_ij dP_ij
          for (int64_t j = 0; j <= i; ++j) {
            const Real dp = dot(doi, vb + j * kv_stride, D);
            ds[j] = dp;
            weighted += p[j] * dp;
            Real* dvj = dvb + j * kv_stride;
            const Real pj = p[j];
            for (int64_t e = 0; e < D; ++e) dvj[e] += pj * doi[e];
          }
          for (int64_t j = 0; j <= i; ++j) {
            const Real dsj = scale * p[j] * (ds[j] - weighted);
            const Real* kj = kb + j * kv_stride;
            Real* dkj = dkb + j * kv_stride;
            for (int64_t e = 0; e < D; ++e) {
              dqi[e] += dsj * kj[e];
              dkj[e] += dsj * qi[e];
            }
          }
        }
      }
    }
  });
}

template void attention_forward_train<float>(float*, float*, const float*, const float*,
                                             const float*, const AttentionDims&, ThreadPool&);
template void attention_forward_train<double>(double*, double*, const double*, const double*,
                                              const double*, const AttentionDims&, ThreadPool&);
template void attention_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*,
                                        const AttentionDims&, ThreadPool&);
template void attention_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*,
                                         const AttentionDims&, ThreadPool&);

}  // namespace toy
