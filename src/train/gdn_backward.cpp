#include "train/gdn_backward.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/gated_delta_net_backward.h"
#include "kernels/gdn_block.h"
#include "model/linear.h"

namespace toy::train {
namespace {

template <typename Real>
void zero(std::vector<Real>& v) {
  std::fill(v.begin(), v.end(), Real(0));
}

}  // namespace

template <typename Real>
GdnBackward<Real>::GdnBackward(const ModelConfig& c, int64_t n_seq, int64_t n_pos)
    : c_(c), B_(n_seq), T_(n_pos), N_(n_seq * n_pos) {
  const GdnConfig& g = c.gdn;
  const int64_t C = g.conv_channels(), D = g.d_inner, H = g.n_v_head;
  d_qkv_.resize(static_cast<size_t>(N_ * C));
  d_conv_.resize(static_cast<size_t>(N_ * C));
  d_z_.resize(static_cast<size_t>(N_ * D));
  d_core_.resize(static_cast<size_t>(N_ * D));
  d_normed_.resize(static_cast<size_t>(N_ * D));
  d_beta_.resize(static_cast<size_t>(N_ * H));
  d_alpha_.resize(static_cast<size_t>(N_ * H));
  d_gate_.resize(static_cast<size_t>(N_ * H));
  sink_norm_.resize(static_cast<size_t>(g.d_v()));
  sink_kernel_.resize(static_cast<size_t>(C * g.d_conv));
  sink_dt_.resize(static_cast<size_t>(H));
  sink_a_.resize(static_cast<size_t>(H));
}

template <typename Real>
void GdnBackward<Real>::backward(Real* d_xn, const Real* d_out, const GdnTensors<Real>& t,
                                 const Real* xn, const LayerWeights& lw, const LayerWeights& lg,
                                 const LinearContext& ctx) {
  const GdnConfig& g = c_.gdn;
  const int64_t C = g.conv_channels(), H = g.n_v_head, K = g.d_conv, qk = g.qk_dim();
  const Compute& cx = ctx.compute;
  // A frozen tensor's gradient goes to a scratch sink of its own (never read).
  auto grad = [](const Tensor& slot, std::vector<Real>& sink) -> Real* {
    return slot.data ? static_cast<Real*>(slot.data) : sink.data();
  };
  // out = normed · ssm_outᵀ
  zero(d_normed_);
  linear_backward(d_normed_.data(), lg.ssm_out, Tensor{}, d_out, t.normed, lw.ssm_out, N_, ctx);
  // normed = rmsnorm(core; ssm_norm) · silu(z), per head
  zero(d_core_);
  zero(d_z_);
  gated_rmsnorm_backward(d_core_.data(), d_z_.data(), grad(lg.ssm_norm, sink_norm_),
                         d_normed_.data(), t.core, t.z, lw.ssm_norm.ptr<const Real>(), N_ * H,
                         g.d_v(), c_.rms_eps);
  // core = delta rule over conv = q | k | v, from a zero state per sequence
  zero(d_conv_);
  zero(d_gate_);
  zero(d_beta_);
  gdn_backward<Real>(d_conv_.data(), d_conv_.data() + qk, d_conv_.data() + 2 * qk, d_gate_.data(),
                     d_beta_.data(), d_core_.data(), t.conv, t.conv + qk, t.conv + 2 * qk, t.gate,
                     t.beta, gdn_dims(c_, B_, T_), cx);
  // conv = silu(conv_pre)
  for (int64_t i = 0; i < N_ * C; ++i) {
    const Real u = t.conv_pre[i];
    const Real s = Real(1) / (Real(1) + std::exp(-u));
    d_conv_[static_cast<size_t>(i)] *= s * (Real(1) + u * (Real(1) - s));
  }
  // conv_pre = causal depthwise convolution of qkv, per sequence
  zero(d_qkv_);
  Real* d_kernel = grad(lg.ssm_conv1d, sink_kernel_);
  for (int64_t s = 0; s < B_; ++s)
    causal_conv_backward(d_qkv_.data() + s * T_ * C, d_kernel, d_conv_.data() + s * T_ * C,
                         t.qkv + s * T_ * C, lw.ssm_conv1d.ptr<const Real>(), T_, C, K);
  // gate = ssm_a · softplus(alpha + ssm_dt);  beta = sigmoid(xn · ssm_betaᵀ)
  zero(d_alpha_);
  gdn_decay_backward(d_alpha_.data(), grad(lg.ssm_dt, sink_dt_), grad(lg.ssm_a, sink_a_),
                     d_gate_.data(), t.alpha, lw.ssm_dt.ptr<const Real>(),
                     lw.ssm_a.ptr<const Real>(), N_, H);
  for (int64_t i = 0; i < N_ * H; ++i) {
    const Real b = t.beta[i];
    d_beta_[static_cast<size_t>(i)] *= b * (Real(1) - b);
  }
  // qkv, z, beta, alpha = xn · W{qkv, gate, beta, alpha}ᵀ
  const int64_t n = N_;
  linear_backward(d_xn, lg.attn_qkv, Tensor{}, d_qkv_.data(), xn, lw.attn_qkv, n, ctx);
  linear_backward(d_xn, lg.attn_gate, Tensor{}, d_z_.data(), xn, lw.attn_gate, n, ctx);
  linear_backward(d_xn, lg.ssm_beta, Tensor{}, d_beta_.data(), xn, lw.ssm_beta, n, ctx);
  linear_backward(d_xn, lg.ssm_alpha, Tensor{}, d_alpha_.data(), xn, lw.ssm_alpha, n, ctx);
}

template class GdnBackward<float>;
template class GdnBackward<double>;

}  // namespace toy::train
