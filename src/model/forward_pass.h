// THE transformer forward pass (DESIGN.md: "Training is a mode of the one
// forward"). One sequence of steps — embed, per layer an attention block and an
// FFN block, output — runs every architecture's forward; what differs between
// inference and training is only where tensors go, which a sink decides:
//
//   inference (model/forward.h): the layer tensors alias a few reused scratch
//     buffers, and attention appends K/V rows to a cache and reads it back;
//   training (model/activations.h): every tensor backward needs has its own slot
//     in an activation arena, and attention runs within each sequence and saves
//     its probabilities.
//
// Every weight product goes through linear() (model/linear.h). The pass is
// templated on Real: float runs the optimized kernels (what inference and
// training run), double the scalar references (gradient checks only).
#pragma once

#include <cstdint>
#include <span>

#include "kernels/attention.h"
#include "kernels/gated_delta_net.h"
#include "kernels/rope.h"
#include "model/config.h"
#include "model/linear.h"
#include "model/weights.h"

namespace toy {

class LayerTaps;

// The rows of one forward call: n_seq sequences of n_pos consecutive positions;
// row s·n_pos + p is position pos0 + p of sequence s. N = n_seq·n_pos rows below.
struct BatchShape {
  int64_t n_seq = 1;
  int64_t n_pos = 0;
  int64_t pos0 = 0;
  // (n_seq * n_pos) RoPE position of each row, or nullptr: pos0 + (row % n_pos).
  // Packed training rows restart the positions at each example.
  const int32_t* positions = nullptr;
  int64_t rows() const { return n_seq * n_pos; }
};

// Where one layer reads and writes. A sink may alias them (inference: qr = q,
// x_mid = x_out = x, xn2 = xn, act = gate) or give each its own saved tensor.
template <typename Real>
struct LayerTensors {
  Real* x;    // (N, E)  residual stream entering the layer
  Real* xn;   // (N, E)  attn_norm(x)
  Real* q;    // (N, Q)  xn·Wqᵀ + bq
  Real* k;    // (N, KV) xn·Wkᵀ + bk
  Real* v;    // (N, V)  xn·Wvᵀ + bv
  Real* qr;   // (N, Q)  q after q-norm and RoPE: what attention reads
  Real* kr;   // (N, KV) k after k-norm and RoPE
  Real* att;  // (N, Q)  attention output, before attn_output
  // A block's output before its post norm (Gemma 2's post_attention_norm /
  // post_ffw_norm), and after it. Without post norms the forward writes the
  // block output to *_out and adds it directly; a sink aliases all three
  // (inference, training without post norms) unless backward needs them apart.
  Real* attn_out;  // (N, E)  att·Woᵀ
  Real* ffn_out;   // (N, E)  the FFN's down projection (or the routed experts' sum)
  Real* proj;      // (N, E)  post_norm(*_out) (scratch)
  Real* x_mid;     // (N, E)  x + attention block
  Real* xn2;       // (N, E)  ffn_norm(x_mid)
  Real* gate;      // (N, F)  xn2·Wgateᵀ
  Real* up;        // (N, F)  xn2·Wupᵀ
  Real* act;       // (N, F)  act(gate)·up
  Real* x_out;     // (N, E)  x_mid + FFN block: the next layer's x
};

// The end of the pass: rows first_row..N-1 get logits.
template <typename Real>
struct OutputTensors {
  Real* x;            // (N, E) residual stream after the last layer
  Real* xn;           // (N - first_row, E) output_norm of the rows that get logits
  Real* logits;       // (N - first_row, n_vocab)
  int64_t first_row;  // 0: every row
};

// Buffers of the mixture-of-experts FFN of one layer, N rows. Inference reuses one
// set for every layer; training keeps router, expert_ids, expert_w and shared_gate of
// each layer for the backward (the rest is scratch).
template <typename Real>
struct ExpertBuffers {
  Real* router;         // (N, n_expert) router logits, then their softmax
  int32_t* expert_ids;  // (N, n_expert_used) the top-k experts of each row
  Real* expert_w;       // (N, n_expert_used) their weights (renormalised per the arch)
  int32_t* routed;      // (N * n_expert_used) flat (t, slot) indices of one expert
  Real* gathered;       // (N, n_embd) inputs routed to one expert
  Real* expert_out;     // (N, n_embd)
  Real* shared_gate;    // (N) ffn_gate_inp_shexp · x, before the sigmoid (Qwen2-MoE)
};

// Buffers of a gated delta-net layer, N rows; C = gdn.conv_channels(), D = d_inner,
// H = n_v_head. Inference reuses one set for every layer (conv_pre = conv,
// normed = core); training keeps each layer's for the backward.
template <typename Real>
struct GdnTensors {
  Real* qkv;       // (N, C) xn·attn_qkvᵀ: q | k | v before the convolution
  Real* conv_pre;  // (N, C) causal depthwise convolution of qkv (after the carried tail)
  Real* conv;      // (N, C) silu(conv_pre): the q | k | v the delta rule reads
  Real* z;         // (N, D) xn·attn_gateᵀ
  Real* beta;      // (N, H) sigmoid(xn·ssm_betaᵀ)
  Real* alpha;     // (N, H) xn·ssm_alphaᵀ
  Real* gate;      // (N, H) log-decay g = ssm_a·softplus(alpha + ssm_dt)
  Real* core;      // (N, D) the delta rule's output
  Real* normed;    // (N, D) rmsnorm(core, per head)·ssm_norm·silu(z): what ssm_out reads
  Real* scratch;   // float forward: gdn_scratch_floats(dims, kGdnChunk, threads) floats
  bool chunked;    // float forward: the chunked delta rule instead of gdn_forward's choice
};

// The recurrent memory of one sequence in one GDN layer (inference: the KV cache).
template <typename Real>
struct GdnState {
  Real* state;      // (n_v_head, d_k, d_v) S, read and overwritten
  Real* conv_tail;  // (d_conv − 1, C) the qkv rows just before this batch, read and overwritten
};

// The op's dimensions for n_seq sequences of n_tok rows of a GDN layer's conv output.
GdnDims gdn_dims(const ModelConfig& config, int64_t n_seq, int64_t n_tok);

template <typename Real>
class ForwardSink {
 public:
  virtual LayerTensors<Real> layer(int64_t il) = 0;
  virtual OutputTensors<Real> output() = 0;
  // att (N, n_head·head_dim_v) = causal attention of the batch's queries q (N, Q)
  // over keys k (N, KV) and values v (N, V) of this batch (after RoPE) and, for
  // inference, the cached earlier positions.
  virtual void attend(int64_t il, Real* att, const Real* q, const Real* k, const Real* v,
                      const AttentionParams& p, const Compute& cx) = 0;
  // Layer il's mixture-of-experts buffers; null buffers: no MoE in this mode.
  virtual ExpertBuffers<Real> experts(int64_t /*il*/) { return {}; }
  // Layer il's gated delta-net buffers; null buffers: no GDN layers in this mode.
  virtual GdnTensors<Real> gdn(int64_t /*il*/) { return {}; }
  // Sequence seq's recurrent memory in layer il, zeroed by the sink when the sequence
  // starts in this batch. Null pointers: every sequence starts empty and its final
  // state is dropped (training).
  virtual GdnState<Real> gdn_state(int64_t /*il*/, int64_t /*seq*/) { return {}; }

  // Activation taps (model/taps.h) fed after each block; null: none (float only).
  LayerTaps* taps = nullptr;

 protected:
  ~ForwardSink() = default;
};

// The RoPE of this model for inference and training alike: the config's mode,
// base, scaling (linear, YaRN) and the llama3 `rope_freqs` factors of `weights`
// (an F32 tensor when present).
RopeParams rope_params(const ModelConfig& config, const Weights& weights);

// The attention of layer il: heads, the config's scale, softcap and window.
AttentionParams attention_params(const ModelConfig& config, int64_t il);

// The embedding rows (n, width) of `tokens` from `table` ([width, n_vocab]: token_embd, or
// a projection lens' donor table), dequantized (F64 rows for double). Throws toy::Error
// for a token id outside [0, n_vocab).
template <typename Real>
void gather_embedding_rows(Real* rows, const Tensor& table, std::span<const int32_t> tokens,
                           int64_t n, int64_t width, int64_t n_vocab);

// Runs tokens (N = shape.rows(), row order of BatchShape) through the model,
// leaving the tensors where the sink says and the logits in sink.output().
// weights: the model's tensors in any stored type for float; F64 for double.
// Throws toy::Error for a token id outside [0, n_vocab).
template <typename Real>
void run_forward(const ModelConfig& config, const Weights& weights, std::span<const int32_t> tokens,
                 const BatchShape& shape, ForwardSink<Real>& sink, const LinearContext& ctx);

}  // namespace toy
