// The backward of the mixture-of-experts FFN (model/forward_pass.cpp, Pass::experts):
// the gradient of the FFN's input flows through every routed expert, the routing
// weights (top-k renormalisation and router softmax, kernels/moe.h; the selection
// itself is piecewise constant), the router, and Qwen2-MoE's shared expert and its
// sigmoid gate — so attention weights and adapters of this and earlier layers train.
// The experts, router and shared expert get gradients only where the store trains
// them (F32 master copies); frozen, only the input gradient flows through them.
//
// The forward keeps only each layer's routing (model/activations.h); each expert's
// gate / up / act / output are recomputed here from its routed rows, through the same
// linear() and SwiGLU as the forward, so activation memory does not grow with the
// number of experts.
#pragma once

#include <cstdint>

#include "core/arena.h"
#include "model/config.h"
#include "model/forward_pass.h"
#include "model/linear.h"
#include "model/weights.h"

namespace toy::train {

template <typename Real>
class MoeBackward {
 public:
  // Scratch for `rows` rows (N = B·T) of a model shaped like `config` (MoE).
  MoeBackward(const ModelConfig& config, int64_t rows);
  MoeBackward(const MoeBackward&) = delete;
  MoeBackward& operator=(const MoeBackward&) = delete;

  // d_in (N, E) += ∂L/∂in, given d_out (N, E) = ∂L/∂(the FFN's output), the FFN's input
  // in (N, E) (ffn_norm of the residual), layer l's weights (any stored type for float,
  // F64 for double) and the routing its forward saved; the expert, router and
  // shared-expert gradients of g that are set (trained tensors) accumulate too.
  void backward(Real* d_in, const Real* d_out, const Real* in, const LayerWeights& l,
                const LayerWeights& g, const ExpertBuffers<Real>& saved, const LinearContext& ctx);

 private:
  // One SwiGLU FFN over n rows x (n, E) scaled by per-row factors: recomputes its
  // output into out_ (n, E), then, with d_y (n, E) the gradient of its output,
  // accumulates d_x (n, E) += ∂L/∂x through the frozen matrices.
  void swiglu_ffn(const Real* x, const Tensor& gate, const Tensor& up, const Tensor& down,
                  int64_t n, const LinearContext& ctx);
  void swiglu_ffn_backward(Real* d_x, const Real* d_y, const Real* x, const Tensor& gate,
                           const Tensor& up, const Tensor& down, const Tensor& d_gate,
                           const Tensor& d_up, const Tensor& d_down, int64_t n,
                           const LinearContext& ctx);

  const ModelConfig& c_;
  int64_t N_;
  Arena arena_;
  int32_t* routed_;  // (N) flat (t, slot) index of each row routed to one expert
  Real* x_;          // (N, E) the rows routed to one expert
  Real* out_;        // (N, E) the expert's recomputed output
  Real* d_y_;        // (N, E) gradient of the expert's output (routing weight applied)
  Real* d_x_;        // (N, E) gradient of the expert's input
  Real* gate_;       // (N, F) recomputed gate, up, act of one expert
  Real* up_;         // (N, F)
  Real* act_;        // (N, F)
  Real* d_gate_;     // (N, F)
  Real* d_up_;       // (N, F)
  Real* d_act_;      // (N, F)
  Real* d_w_;        // (N, K) gradient of each row's routing weights
  Real* d_router_;   // (N, X) gradient of the router logits
  Real* d_shared_;   // (N) gradient of the shared-expert gate logit
};

}  // namespace toy::train
