// The training model: a sequence-mode forward over B sequences × T positions
// that keeps what the backward needs, and the backward for the dense llama
// family (llama, qwen2 with q/k/v biases, qwen3 with per-head q/k norm; tied or
// untied output). Every op runs batched over all B·T rows and all heads.
//
// The float forward calls the inference kernels (rmsnorm_forward,
// rope_forward, gated_activation) so training and inference compute the same
// function; double instantiates the scalar references for gradient checks.
// backward() reads as forward() reversed.
#pragma once

#include <cstdint>
#include <vector>

#include "core/arena.h"
#include "kernels/attention_backward.h"
#include "kernels/compute.h"
#include "kernels/cross_entropy_backward.h"
#include "kernels/rope_backward.h"
#include "train/params.h"

namespace toy::train {

// Throws toy::Error unless `config` is a dense llama-family model training supports.
void check_trainable(const ModelConfig& config);

template <typename Real>
class TrainModel {
 public:
  // n_seq sequences of n_pos positions per forward (B and T).
  TrainModel(ParamStore<Real>& store, int64_t n_seq, int64_t n_pos);
  TrainModel(const TrainModel&) = delete;
  TrainModel& operator=(const TrainModel&) = delete;

  int64_t n_seq() const { return B_; }
  int64_t n_pos() const { return T_; }

  // tokens, targets: (B, T); targets < 0 are ignored. Saves the activations and
  // returns the summed loss and the number of counted positions.
  CrossEntropyResult forward(const int32_t* tokens, const int32_t* targets, const Compute& cx);
  // Backward of the last forward with loss gradient d(loss)/d(logit row) scaled by
  // grad_scale (1/counted for the mean); accumulates into the store's gradients.
  void backward(double grad_scale, const Compute& cx);

  const Real* logits() const { return logits_; }

  // Accumulate gradients into `grads` (views in the store's layout, e.g. a
  // GradBuffer of a data-parallel replica) instead of the store's own.
  void set_gradients(Weights& grads) { grads_ = &grads; }  // (B·T, n_vocab) of the last forward

 private:
  struct LayerActs {
    Real* x;      // (BT, E)  residual stream entering the layer
    Real* xn;     // (BT, E)  attn_norm(x)
    Real* q;      // (BT, Q)  xn·Wqᵀ + bq
    Real* k;      // (BT, KV)
    Real* v;      // (BT, KV)
    Real* qr;     // (BT, Q)  q after q-norm and RoPE (what attention reads)
    Real* kr;     // (BT, KV)
    Real* probs;  // (B, H, T, T) attention probabilities
    Real* att;    // (BT, Q)  attention output, before attn_output
    Real* x_mid;  // (BT, E)  x + attention block
    Real* xn2;    // (BT, E)  ffn_norm(x_mid)
    Real* gate;   // (BT, F)
    Real* up;     // (BT, F)
    Real* act;    // (BT, F)  silu(gate)·up
  };

  void attention_block(int64_t il, const Compute& cx);
  void ffn_block(int64_t il, const Compute& cx);
  void attention_block_backward(int64_t il, const Compute& cx);
  void ffn_block_backward(int64_t il, const Compute& cx);
  void norm(Real* out, const Real* x, const Tensor& w, int64_t rows, int64_t n, const Compute& cx);
  void rope(Real* x, int64_t n_heads, const Compute& cx);
  void rope_backward(Real* dx, int64_t n_heads, const Compute& cx);

  ParamStore<Real>& store_;
  Weights* grads_;  // where backward accumulates (the store's gradients by default)
  const ModelConfig& c_;
  int64_t B_, T_, BT_;
  AttentionDims attn_dims_{};
  RopeTable<Real> rope_table_;
  RopeParams rope_params_;
  std::vector<int32_t> positions_;  // (BT) position of each row within its sequence
  std::vector<int32_t> tokens_, targets_;
  std::vector<Real> norm_partial_;  // per-block partial norm-weight gradients

  Arena arena_;
  std::vector<LayerActs> layers_;
  Real* x_final_;  // (BT, E) residual stream after the last layer
  Real* xf_;       // (BT, E) output_norm(x_final)
  Real* logits_;   // (BT, V)
  Real* proj_;     // (BT, E) scratch for block outputs
  // Gradient scratch.
  Real* d_x_;       // (BT, E) gradient of the residual stream
  Real* d_norm_;    // (BT, E)
  Real* d_q_;       // (BT, Q)
  Real* d_k_;       // (BT, KV)
  Real* d_v_;       // (BT, KV)
  Real* d_qr_;      // (BT, Q)
  Real* d_kr_;      // (BT, KV)
  Real* d_att_;     // (BT, Q)
  Real* d_gate_;    // (BT, F)
  Real* d_up_;      // (BT, F)
  Real* d_act_;     // (BT, F)
  Real* d_logits_;  // (BT, V)
};

}  // namespace toy::train
