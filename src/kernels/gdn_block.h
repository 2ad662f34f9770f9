// The element-wise pieces of a gated delta-net block (Qwen3-Next's linear-attention
// layer) around the delta rule itself (kernels/gated_delta_net.h): the causal
// depthwise convolution, the decay and β gates, and the gated RMSNorm of the
// output. Each forward with its backward (accumulating +=), templated on the
// float type so gradient checks run in double.
#pragma once

#include <cstdint>

namespace toy {

// out (T, C) = Σ_j w[c][j] · x_ext[t + j][c], x_ext = [tail (K−1, C); x (T, C)]:
// ggml_ssm_conv's causal depthwise convolution, kernel w ne = [K, C] (w[c·K + j],
// tap K−1 on the current token). tail null: zeros (a sequence's start).
template <typename Real>
void causal_conv_forward(Real* out, const Real* x, const Real* tail, const Real* w, int64_t T,
                         int64_t C, int64_t K);

// tail (K−1, C) ← the last K−1 rows of [tail; x (T, C)].
template <typename Real>
void causal_conv_tail(Real* tail, const Real* x, int64_t T, int64_t C, int64_t K);

// From a zero tail: dx (T, C) += ..., dw [K, C] += ...
template <typename Real>
void causal_conv_backward(Real* dx, Real* dw, const Real* dout, const Real* x, const Real* w,
                          int64_t T, int64_t C, int64_t K);

// g (N, H) = a[h] · softplus(alpha + dt[h])  (a = −exp(A_log) < 0, so g < 0: a decay).
template <typename Real>
void gdn_decay_forward(Real* g, const Real* alpha, const Real* dt, const Real* a, int64_t N,
                       int64_t H);
template <typename Real>
void gdn_decay_backward(Real* dalpha, Real* ddt, Real* da, const Real* dg, const Real* alpha,
                        const Real* dt, const Real* a, int64_t N, int64_t H);

// out (rows, n) = rmsnorm(x; w) · silu(z): Qwen3-Next's gated norm, per head
// (rows = N·heads, n = d_v, one weight w (n) for every head).
template <typename Real>
void gated_rmsnorm_forward(Real* out, const Real* x, const Real* z, const Real* w, int64_t rows,
                           int64_t n, float eps);
template <typename Real>
void gated_rmsnorm_backward(Real* dx, Real* dz, Real* dw, const Real* dout, const Real* x,
                            const Real* z, const Real* w, int64_t rows, int64_t n, float eps);

}  // namespace toy
