#include "kernels/gdn_block.h"

#include <algorithm>
#include <cmath>

namespace toy {
namespace {

template <typename Real>
Real sigmoid(Real x) {
  return Real(1) / (Real(1) + std::exp(-x));
}

// log(1 + e^x) without overflow (as ggml_softplus: x itself above 20).
template <typename Real>
Real softplus(Real x) {
  return x > Real(20) ? x : std::log1p(std::exp(x));
}

template <typename Real>
Real inverse_rms(const Real* x, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return Real(1.0 / std::sqrt(sum / double(n) + double(eps)));
}

}  // namespace

template <typename Real>
void causal_conv_forward(Real* out, const Real* x, const Real* tail, const Real* w, int64_t T,
                         int64_t C, int64_t K) {
  for (int64_t t = 0; t < T; ++t) {
    Real* o = out + t * C;
    std::fill(o, o + C, Real(0));
    for (int64_t j = 0; j < K; ++j) {
      // Row t + j of x_ext: x row t + j − (K−1), or a tail row before the batch.
      const int64_t src = t + j - (K - 1);
      const Real* in = src >= 0 ? x + src * C : (tail ? tail + (K - 1 + src) * C : nullptr);
      if (!in) continue;
      for (int64_t c = 0; c < C; ++c) o[c] += w[c * K + j] * in[c];
    }
  }
}

template <typename Real>
void causal_conv_tail(Real* tail, const Real* x, int64_t T, int64_t C, int64_t K) {
  const int64_t keep = K - 1;
  if (keep <= 0) return;
  if (T >= keep) {
    std::copy(x + (T - keep) * C, x + T * C, tail);
    return;
  }
  // Fewer new rows than the tail: shift the old rows up, append the new ones.
  std::copy(tail + T * C, tail + keep * C, tail);
  std::copy(x, x + T * C, tail + (keep - T) * C);
}

template <typename Real>
void causal_conv_backward(Real* dx, Real* dw, const Real* dout, const Real* x, const Real* w,
                          int64_t T, int64_t C, int64_t K) {
  for (int64_t t = 0; t < T; ++t) {
    const Real* d = dout + t * C;
    for (int64_t j = 0; j < K; ++j) {
      const int64_t src = t + j - (K - 1);
      if (src < 0) continue;
      const Real* in = x + src * C;
      Real* din = dx + src * C;
      for (int64_t c = 0; c < C; ++c) {
        din[c] += w[c * K + j] * d[c];
        dw[c * K + j] += in[c] * d[c];
      }
    }
  }
}

template <typename Real>
void gdn_decay_forward(Real* g, const Real* alpha, const Real* dt, const Real* a, int64_t N,
                       int64_t H) {
  for (int64_t t = 0; t < N; ++t)
    for (int64_t h = 0; h < H; ++h) g[t * H + h] = a[h] * softplus(alpha[t * H + h] + dt[h]);
}

template <typename Real>
void gdn_decay_backward(Real* dalpha, Real* ddt, Real* da, const Real* dg, const Real* alpha,
                        const Real* dt, const Real* a, int64_t N, int64_t H) {
  for (int64_t t = 0; t < N; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const Real u = alpha[t * H + h] + dt[h];
      const Real d = dg[t * H + h];
      const Real du = d * a[h] * sigmoid(u);  // softplus' = sigmoid
      dalpha[t * H + h] += du;
      ddt[h] += du;
      da[h] += d * softplus(u);
    }
}

template <typename Real>
void gated_rmsnorm_forward(Real* out, const Real* x, const Real* z, const Real* w, int64_t rows,
                           int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const Real* xr = x + r * n;
    const Real* zr = z + r * n;
    const Real scale = inverse_rms(xr, n, eps);
    Real* o = out + r * n;
    for (int64_t i = 0; i < n; ++i) o[i] = xr[i] * scale * w[i] * (zr[i] * sigmoid(zr[i]));
  }
}

template <typename Real>
void gated_rmsnorm_backward(Real* dx, Real* dz, Real* dw, const Real* dout, const Real* x,
                            const Real* z, const Real* w, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const Real* xr = x + r * n;
    const Real* zr = z + r * n;
    const Real* d = dout + r * n;
    const Real scale = inverse_rms(xr, n, eps);
    // y = ŷ·silu(z), ŷ = x̂·w: dŷ = dy·silu(z), then RMSNorm's backward.
    Real dot = 0;
    for (int64_t i = 0; i < n; ++i) {
      const Real s = sigmoid(zr[i]);
      dot += w[i] * d[i] * zr[i] * s * xr[i];
    }
    dot *= scale / Real(n);
    for (int64_t i = 0; i < n; ++i) {
      const Real s = sigmoid(zr[i]);
      const Real silu = zr[i] * s;
      const Real x_hat = xr[i] * scale;
      const Real dyhat = d[i] * silu;
      dx[r * n + i] += scale * (w[i] * dyhat - x_hat * dot);
      dw[i] += dyhat * x_hat;
      dz[r * n + i] += d[i] * x_hat * w[i] * s * (Real(1) + zr[i] * (Real(1) - s));
    }
  }
}

#define TOY_GDN_BLOCK(Real)                                                                        \
  template void causal_conv_forward<Real>(Real*, const Real*, const Real*, const Real*, int64_t,   \
                                          int64_t, int64_t);                                       \
  template void causal_conv_tail<Real>(Real*, const Real*, int64_t, int64_t, int64_t);             \
  template void causal_conv_backward<Real>(Real*, Real*, const Real*, const Real*, const Real*,    \
                                           int64_t, int64_t, int64_t);                             \
  template void gdn_decay_forward<Real>(Real*, const Real*, const Real*, const Real*, int64_t,     \
                                        int64_t);                                                  \
  template void gdn_decay_backward<Real>(Real*, Real*, Real*, const Real*, const Real*,            \
                                         const Real*, const Real*, int64_t, int64_t);              \
  template void gated_rmsnorm_forward<Real>(Real*, const Real*, const Real*, const Real*, int64_t, \
                                            int64_t, float);                                       \
  template void gated_rmsnorm_backward<Real>(Real*, Real*, Real*, const Real*, const Real*,        \
                                             const Real*, const Real*, int64_t, int64_t, float);
TOY_GDN_BLOCK(float)
TOY_GDN_BLOCK(double)
#undef TOY_GDN_BLOCK

}  // namespace toy
