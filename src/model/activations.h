// The training mode of the one forward (model/forward_pass.h): an activation
// arena that gives every tensor the backward reads its own slot, per layer, for
// B sequences × T positions (row s·T + p is position p of sequence s), and an
// attention that runs causally within each sequence and saves its softmax
// probabilities (kernels/attention_backward.h). The backward (train/model.cpp)
// reads these tensors in the reverse order of the forward's calls.
#pragma once

#include <cstdint>
#include <vector>

#include "core/arena.h"
#include "kernels/attention_backward.h"
#include "model/forward_pass.h"

namespace toy {

template <typename Real>
class Activations final : public ForwardSink<Real> {
 public:
  // Slots for n_seq sequences of n_pos positions of a model shaped like `config`.
  Activations(const ModelConfig& config, int64_t n_seq, int64_t n_pos);
  Activations(const Activations&) = delete;
  Activations& operator=(const Activations&) = delete;

  int64_t n_seq() const { return B_; }
  int64_t n_pos() const { return T_; }
  int64_t rows() const { return B_ * T_; }

  // What the last forward saved (N = B·T rows). layer(il).proj is shared scratch;
  // attn_out and ffn_out are saved per layer only when the model has post norms
  // (their backward reads them), else they alias proj.
  const LayerTensors<Real>& saved(int64_t il) const { return layers_[static_cast<size_t>(il)]; }
  const Real* probs(int64_t il) const { return probs_[static_cast<size_t>(il)]; }  // (B, H, T, T)
  // Mixture of experts: layer il's routing (router softmax, expert_ids, expert_w,
  // shared_gate logits); its gathered / expert_out / routed and the layer's gate / up /
  // act are scratch shared by every layer, which the backward recomputes per expert.
  const ExpertBuffers<Real>& saved_experts(int64_t il) const {
    return experts_[static_cast<size_t>(il)];
  }
  // Layer il's gated delta-net tensors (null for an attention layer); its scratch is null
  // (the forward sizes the delta rule's scratch for the call's threads).
  const GdnTensors<Real>& saved_gdn(int64_t il) const { return gdn_[static_cast<size_t>(il)]; }
  // Layer il's attention: the config's scale, softcap and (sliding-window layers) window.
  const AttentionDims& attention_dims(int64_t il) const { return dims_[static_cast<size_t>(il)]; }
  const Real* x_final() const { return x_final_; }  // (N, E)
  const Real* xf() const { return xf_; }            // (N, E) output_norm(x_final)
  const Real* logits() const { return logits_; }    // (N, n_vocab)
  // (N) example of each position of packed rows (block-causal attention), or nullptr.
  const int32_t* segment() const { return segment_; }

  // ForwardSink.
  LayerTensors<Real> layer(int64_t il) override { return layers_[static_cast<size_t>(il)]; }
  OutputTensors<Real> output() override { return {x_final_, xf_, logits_, 0}; }
  void attend(int64_t il, Real* att, const Real* q, const Real* k, const Real* v,
              const AttentionParams& p, const Compute& cx) override;
  ExpertBuffers<Real> experts(int64_t il) override { return experts_[static_cast<size_t>(il)]; }
  GdnTensors<Real> gdn(int64_t il) override { return gdn_[static_cast<size_t>(il)]; }
  void set_segment(const int32_t* segment) { segment_ = segment; }
  // What every layer's attention products round their inputs to (mixed precision).
  void set_attention_inputs(GemmInputs inputs) {
    for (AttentionDims& d : dims_) d.inputs = inputs;
  }

 private:
  int64_t B_, T_;
  std::vector<AttentionDims> dims_;   // per layer
  const int32_t* segment_ = nullptr;  // set by forward_train for its call
  Arena arena_;
  std::vector<LayerTensors<Real>> layers_;
  std::vector<Real*> probs_;                  // per layer (B, H, T, T)
  std::vector<ExpertBuffers<Real>> experts_;  // per layer (MoE only)
  std::vector<GdnTensors<Real>> gdn_;         // per layer (GDN layers only)
  Real* x_final_;                             // (N, E)
  Real* xf_;                                  // (N, E)
  Real* logits_;                              // (N, n_vocab)
};

// The training forward: tokens (B, T) at positions 0..T-1 of each sequence,
// saving into `acts`; the logits are acts.logits(). weights: F32 (F64 for double).
// Packed rows (several examples per row): `positions` (B·T) restart at each
// example and `segment` (B·T) names each position's example, so attention is
// block-causal; both must outlive the backward of this forward. nullptr: plain rows.
template <typename Real>
void forward_train(const ModelConfig& config, const Weights& weights, const int32_t* tokens,
                   Activations<Real>& acts, const LinearContext& ctx,
                   const int32_t* positions = nullptr, const int32_t* segment = nullptr);

}  // namespace toy
