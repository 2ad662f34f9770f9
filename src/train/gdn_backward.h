// The backward of a gated delta-net block (model/forward_pass.cpp gdn_block), the
// forward's calls reversed: ssm_out, the gated RMSNorm, the delta rule
// (kernels/gated_delta_net_backward.h), SiLU, the causal convolution, the β and
// decay gates, and the four input projections. Every weight product's gradient
// goes through linear_backward() beside the forward's linear(), so LoRA and
// frozen bases work as for attention. Gradient scratch is allocated once.
#pragma once

#include <cstdint>
#include <vector>

#include "model/forward_pass.h"
#include "model/weights.h"

namespace toy::train {

template <typename Real>
class GdnBackward {
 public:
  // For n_seq sequences of n_pos rows of a model with GDN layers.
  GdnBackward(const ModelConfig& config, int64_t n_seq, int64_t n_pos);

  // d_xn (N, E) += the gradient of the block's input xn (= attn_norm(x)), from d_out
  // (N, E), the gradient of the block's output. Weight gradients go to the slots of
  // `lg` that are present (a frozen tensor's slot is empty).
  void backward(Real* d_xn, const Real* d_out, const GdnTensors<Real>& saved, const Real* xn,
                const LayerWeights& lw, const LayerWeights& lg, const LinearContext& ctx);

 private:
  const ModelConfig& c_;
  int64_t B_, T_, N_;
  std::vector<Real> d_qkv_;     // (N, C)
  std::vector<Real> d_conv_;    // (N, C) of the conv output, then of its input (pre-SiLU)
  std::vector<Real> d_z_;       // (N, D)
  std::vector<Real> d_core_;    // (N, D)
  std::vector<Real> d_normed_;  // (N, D)
  std::vector<Real> d_beta_;    // (N, H)
  std::vector<Real> d_alpha_;   // (N, H)
  std::vector<Real> d_gate_;    // (N, H)
  // Gradient sinks of frozen vectors and kernels (written, never read).
  std::vector<Real> sink_norm_, sink_kernel_, sink_dt_, sink_a_;
};

}  // namespace toy::train
