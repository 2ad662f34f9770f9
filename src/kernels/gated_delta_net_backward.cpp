#include "kernels/gated_delta_net_backward.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace toy {

namespace {

// y = x / max(‖x‖, eps): dx += (dy − y·(y·dy)) / ‖x‖, or dy / eps when floored.
template <typename Real>
void l2norm_backward(Real* dx, const Real* dy, const Real* y, Real inv, bool floored, int64_t n) {
  Real dot = 0;
  if (!floored)
    for (int64_t i = 0; i < n; ++i) dot += y[i] * dy[i];
  for (int64_t i = 0; i < n; ++i) dx[i] += inv * (dy[i] - y[i] * dot);
}

}  // namespace

template <typename Real>
void gdn_backward(Real* dq, Real* dk, Real* dv, Real* dg, Real* dbeta, const Real* dout,
                  const Real* q, const Real* k, const Real* v, const Real* g, const Real* beta,
                  const GdnDims& d, const Compute& cx) {
  gdn_check_dims(d);
  const int64_t Dk = d.d_k, Dv = d.d_v, T = d.n_tok, SS = Dk * Dv;
  const int64_t ratio = d.n_v_head / d.n_k_head;
  const int64_t gw = d.gate_width();
  const Real scale = Real(1) / std::sqrt(Real(Dk));
  const int64_t n_tasks = d.n_seq * d.n_k_head;
  cx.run([&](int thread, int n_threads) {
    const int64_t begin = n_tasks * thread / n_threads, end = n_tasks * (thread + 1) / n_threads;
    if (begin == end) return;
    std::vector<Real> S(static_cast<size_t>((T + 1) * SS));  // S_0 .. S_T
    std::vector<Real> Qn(T * Dk), Kn(T * Dk), iq(T), ik(T), R(T * Dv), A(T * Dk);
    std::vector<Real> dS(SS), dSp(SS), dqn(T * Dk), dkn(T * Dk), ddelta(Dv), dp(Dv), p(Dv);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t s = task / d.n_k_head, kh = task % d.n_k_head;
      std::fill(dqn.begin(), dqn.end(), Real(0));
      std::fill(dkn.begin(), dkn.end(), Real(0));
      std::vector<char> q_floored(T), k_floored(T);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t off = (s * T + t) * d.row_stride + kh * Dk;
        Real nq = 0, nk = 0;
        for (int64_t i = 0; i < Dk; ++i) {
          nq += q[off + i] * q[off + i];
          nk += k[off + i] * k[off + i];
        }
        nq = std::sqrt(nq);
        nk = std::sqrt(nk);
        q_floored[t] = nq <= Real(d.eps);
        k_floored[t] = nk <= Real(d.eps);
        iq[t] = Real(1) / std::max(nq, Real(d.eps));
        ik[t] = Real(1) / std::max(nk, Real(d.eps));
        for (int64_t i = 0; i < Dk; ++i) {
          Qn[t * Dk + i] = q[off + i] * iq[t];
          Kn[t * Dk + i] = k[off + i] * ik[t];
        }
      }
      for (int64_t h = kh * ratio; h < (kh + 1) * ratio; ++h) {
        auto row = [&](int64_t t) { return s * T + t; };
        auto gate = [&](int64_t t, int64_t i) {
          return g[row(t) * gw + (d.per_channel_gate ? h * Dk + i : h)];
        };
        // Forward, keeping S_t, the decays a_t and r_t = v_t − S'ᵀk̂_t.
        std::fill(S.begin(), S.begin() + SS, Real(0));
        for (int64_t t = 0; t < T; ++t) {
          const Real* prev = &S[t * SS];
          Real* cur = &S[(t + 1) * SS];
          const Real* kn = &Kn[t * Dk];
          std::fill(p.begin(), p.end(), Real(0));
          for (int64_t i = 0; i < Dk; ++i) {
            const Real a = std::exp(gate(t, i));
            A[t * Dk + i] = a;
            for (int64_t j = 0; j < Dv; ++j) {
              cur[i * Dv + j] = a * prev[i * Dv + j];
              p[j] += kn[i] * cur[i * Dv + j];
            }
          }
          const Real* vt = v + row(t) * d.row_stride + h * Dv;
          const Real b = beta[row(t) * d.n_v_head + h];
          Real* r = &R[t * Dv];
          for (int64_t j = 0; j < Dv; ++j) r[j] = vt[j] - p[j];
          for (int64_t i = 0; i < Dk; ++i)
            for (int64_t j = 0; j < Dv; ++j) cur[i * Dv + j] += kn[i] * b * r[j];
        }
        // Backward.
        std::fill(dS.begin(), dS.end(), Real(0));
        for (int64_t t = T - 1; t >= 0; --t) {
          const Real* prev = &S[t * SS];
          const Real* cur = &S[(t + 1) * SS];
          const Real* qn = &Qn[t * Dk];
          const Real* kn = &Kn[t * Dk];
          const Real* dot = dout + row(t) * d.n_v_head * Dv + h * Dv;
          const Real b = beta[row(t) * d.n_v_head + h];
          const Real* r = &R[t * Dv];
          // o = scale·S_tᵀq̂
          for (int64_t i = 0; i < Dk; ++i) {
            Real acc = 0;
            for (int64_t j = 0; j < Dv; ++j) {
              acc += cur[i * Dv + j] * dot[j];
              dS[i * Dv + j] += scale * qn[i] * dot[j];
            }
            dqn[t * Dk + i] += scale * acc;
          }
          // S_t = S' + k̂ δᵀ
          std::fill(ddelta.begin(), ddelta.end(), Real(0));
          for (int64_t i = 0; i < Dk; ++i) {
            Real acc = 0;
            for (int64_t j = 0; j < Dv; ++j) {
              acc += dS[i * Dv + j] * b * r[j];
              ddelta[j] += dS[i * Dv + j] * kn[i];
            }
            dkn[t * Dk + i] += acc;
          }
          // δ = β r, r = v − p
          Real db = 0;
          Real* dvt = dv + row(t) * d.row_stride + h * Dv;
          for (int64_t j = 0; j < Dv; ++j) {
            db += ddelta[j] * r[j];
            dvt[j] += b * ddelta[j];
            dp[j] = -b * ddelta[j];
          }
          dbeta[row(t) * d.n_v_head + h] += db;
          // p = S'ᵀk̂ with S' = diag(a) S_{t−1}
          Real dg_head = 0;
          for (int64_t i = 0; i < Dk; ++i) {
            const Real a = A[t * Dk + i];
            Real acc = 0, dgi = 0;
            for (int64_t j = 0; j < Dv; ++j) {
              const Real sp = a * prev[i * Dv + j];
              const Real dsp = dS[i * Dv + j] + kn[i] * dp[j];
              acc += sp * dp[j];
              dgi += dsp * sp;
              dS[i * Dv + j] = a * dsp;
            }
            dkn[t * Dk + i] += acc;
            if (d.per_channel_gate) {
              dg[row(t) * gw + h * Dk + i] += dgi;
            } else {
              dg_head += dgi;
            }
          }
          if (!d.per_channel_gate) dg[row(t) * gw + h] += dg_head;
        }
      }
      for (int64_t t = 0; t < T; ++t) {
        const int64_t off = (s * T + t) * d.row_stride + kh * Dk;
        l2norm_backward(dq + off, &dqn[t * Dk], &Qn[t * Dk], iq[t], q_floored[t] != 0, Dk);
        l2norm_backward(dk + off, &dkn[t * Dk], &Kn[t * Dk], ik[t], k_floored[t] != 0, Dk);
      }
    }
  });
}

template void gdn_backward<float>(float*, float*, float*, float*, float*, const float*,
                                  const float*, const float*, const float*, const float*,
                                  const float*, const GdnDims&, const Compute&);
template void gdn_backward<double>(double*, double*, double*, double*, double*, const double*,
                                   const double*, const double*, const double*, const double*,
                                   const double*, const GdnDims&, const Compute&);

}  // namespace toy
