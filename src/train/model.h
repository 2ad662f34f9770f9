// The training model: the training mode of the one forward (model/activations.h
// saves what backward needs) followed by the cross-entropy loss, and the
// backward for the llama family (llama, qwen2 with q/k/v biases, qwen3 with per-head
// q/k norm, gemma2 with post norms, GeGLU, softcaps, sliding-window layers and scaled
// embeddings; tied or untied output; and the mixture-of-experts mixtral, qwen2moe,
// qwen3moe and olmoe with full-width q/k norm, whose experts and router train or stay
// frozen as the store says: train/moe_backward.h), which reads as the forward's calls in reverse.
// What it trains is the store's: every tensor (from scratch), some tensors over a frozen base, or
// LoRA adapters (train/finetune.h); frozen tensors get no gradient, but the input gradient flows
// through them. Every op runs batched over all B·T rows and all heads; every weight gradient goes
// through linear_backward (model/linear.h).
//
// float runs the optimized kernels (the ones inference runs); double the scalar
// references, for the gradient checks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "core/arena.h"
#include "kernels/compute.h"
#include "kernels/cross_entropy_backward.h"
#include "kernels/rope_backward.h"
#include "model/activations.h"
#include "train/gdn_backward.h"
#include "train/moe_backward.h"
#include "train/params.h"

namespace toy::train {

// Throws toy::Error unless `config` is a llama-family model training supports.
void check_trainable(const ModelConfig& config);
// check_trainable, then config.
const ModelConfig& trainable(const ModelConfig& config);

// Elements [first, second) of a store's layout.
using ElementRange = std::pair<int64_t, int64_t>;

// The store's elements whose gradients the backward has finished at each stage
// (TrainModel::set_stage_hook): entry il < n_layer is layer il's tensors, entry n_layer the
// output head's (output.weight, output_norm.weight and their adapters), entry n_layer + 1
// the rest (token embeddings, a lens: final only when backward returns). Adjacent tensors
// are merged into one range, with the alignment padding between them (whose gradient is 0).
template <typename Real>
std::vector<std::vector<ElementRange>> gradient_stages(const ParamStore<Real>& store);

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
  // Packed rows: positions (B, T) restart at each example and segment (B, T)
  // names each position's example (block-causal attention); copied.
  CrossEntropyResult forward(const int32_t* tokens, const int32_t* targets,
                             const int32_t* positions, const int32_t* segment, const Compute& cx);
  // Backward of the last forward with loss gradient d(loss)/d(logit row) scaled by
  // grad_scale (1/counted for the mean); accumulates into the store's gradients.
  void backward(double grad_scale, const Compute& cx);

  const Real* logits() const { return acts_.logits(); }  // (B·T, n_vocab) of the last forward

  // Accumulate gradients into `grads` (total() elements in the store's layout, e.g. a
  // GradBuffer of a data-parallel replica) instead of the store's own.
  void set_gradients(Real* grads);
  // MatmulMode::Train (F32, the default) or TrainBf16 (mixed precision: the weight products
  // of forward and backward, and the attention products, on BF16-rounded inputs, F32 sums,
  // F32 master weights). TrainF16 rounds the weight products only: attention's inputs
  // include the loss-scaled gradients, which would overflow F16's range far more often.
  void set_matmul_mode(MatmulMode mode) {
    mode_ = mode;
    acts_.set_attention_inputs(mode == MatmulMode::TrainBf16 ? GemmInputs::BF16 : GemmInputs::F32);
  }
  // Activation taps (model/taps.h) fed by the forward from now on; null: none.
  void set_taps(LayerTaps* taps) { acts_.taps = taps; }
  // Called by backward as the gradients of a stage (gradient_stages) become final: with
  // n_layer after the output head, then with il after layer il, from the last layer down,
  // on backward's thread. A data-parallel run starts summing them over the ranks while
  // backward goes on (train/backward_reduction.h). Null: no calls.
  void set_stage_hook(std::function<void(int64_t stage)> hook) { stage_hook_ = std::move(hook); }
  // LoRA dropout for the next forward and its backward (model/lora.h LoraDropout): rate p
  // (0: none, as for evaluation), the micro-step's mask stream, and the global row of this
  // model's first row (its replica's place in the batch).
  void set_lora_dropout(float p, uint64_t stream, int64_t row0) {
    if (lora_) lora_->dropout = LoraDropout{p, stream, row0};
  }

 private:
  void attention_block_backward(int64_t il, const Compute& cx);
  void gdn_block_backward(int64_t il, const Compute& cx);
  void ffn_block_backward(int64_t il, const Compute& cx);
  void rope_backward(Real* dx, int64_t n_heads, const Compute& cx);
  const Real* post_norm_backward(const Tensor& w, const Tensor& g, const Real* in,
                                 const Compute& cx);

  LinearContext context(const Compute& cx) const { return LinearContext{cx, mode_, lora_.get()}; }

  ParamStore<Real>& store_;
  Weights grads_;                           // where backward accumulates (the store's by default)
  std::unique_ptr<LoraSet> lora_;           // the store's trainable adapters over grads_, or null
  std::unique_ptr<MoeBackward<Real>> moe_;  // the frozen-expert FFN backward (MoE models)
  std::unique_ptr<GdnBackward<Real>> gdn_;  // the gated delta-net block backward (hybrids)
  MatmulMode mode_ = MatmulMode::Train;
  std::function<void(int64_t)> stage_hook_;
  const ModelConfig& c_;
  int64_t B_, T_, BT_;
  std::vector<double> row_sums_;  // (B·T) Σ exp(logit − max) per row, saved by forward()
  Activations<Real> acts_;
  RopeTable<Real> rope_table_;      // the forward's RoPE, for its backward
  std::vector<int32_t> positions_;  // (BT) RoPE position of each row (restarts per example)
  std::vector<int32_t> segment_;    // (BT) example of each row of packed rows; empty: plain
  std::vector<int32_t> tokens_, targets_;
  std::vector<Real> norm_partial_;             // per-block partial norm-weight gradients
  std::vector<Real> lens_rows_, d_lens_rows_;  // (BT, n_embd_lens) under a projection lens

  Arena arena_;     // the gradient scratch below
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
