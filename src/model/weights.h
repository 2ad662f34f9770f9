// Weights: views of a model's tensors (in place in the GGUF mapping, in their
// stored type) and the ONE tensor visitor that lists them.
//
// Shapes are ggml order (ne[0] contiguous): a matrix [n_in, n_out] is n_out rows
// of n_in values and `linear()` computes y = W x row by row. An absent optional
// tensor is an empty Tensor (data == nullptr).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace toy {

struct LayerWeights {
  Tensor attn_norm;       // [n_embd]
  Tensor attn_q;          // [n_embd, n_head*head_dim]
  Tensor attn_k;          // [n_embd, n_head_kv*head_dim]
  Tensor attn_v;          // [n_embd, n_head_kv*head_dim]
  Tensor attn_output;     // [n_head*head_dim, n_embd]
  Tensor attn_q_bias;     // [n_head*head_dim]           (qwen2*, optional for llama)
  Tensor attn_k_bias;     // [n_head_kv*head_dim]
  Tensor attn_v_bias;     // [n_head_kv*head_dim]
  Tensor attn_q_norm;     // [head_dim] per head (qwen3) or [n_head*head_dim] (olmoe)
  Tensor attn_k_norm;     // [head_dim] per head (qwen3) or [n_head_kv*head_dim] (olmoe)
  Tensor post_attn_norm;  // [n_embd]                    (gemma2)
  // Gated delta-net layers (instead of attn_q/k/v/output; llama.cpp's qwen3next
  // names). C = conv_channels = 2·n_k_head·d_k + d_inner, H = n_v_head, D = d_inner.
  Tensor attn_qkv;    // [n_embd, C] q | k | v before the convolution
  Tensor attn_gate;   // [n_embd, D] z, the output gate
  Tensor ssm_beta;    // [n_embd, H] β before the sigmoid
  Tensor ssm_alpha;   // [n_embd, H] decay input a
  Tensor ssm_conv1d;  // [d_conv, C] causal depthwise kernel (F32)
  Tensor ssm_dt;      // [H] ssm_dt.bias, added to a before the softplus
  Tensor ssm_a;       // [H] −exp(A_log) as llama.cpp's converter stores it
  Tensor ssm_norm;    // [d_v] gated RMSNorm weight, shared by the heads
  Tensor ssm_out;     // [D, n_embd]
  Tensor ffn_norm;    // [n_embd]
  // Dense FFN: down(act(gate x) * up x).
  Tensor ffn_gate;       // [n_embd, n_ff]
  Tensor ffn_up;         // [n_embd, n_ff]
  Tensor ffn_down;       // [n_ff, n_embd]
  Tensor post_ffn_norm;  // [n_embd]                     (gemma2)
  // Mixture of experts: slice e of a 3-D tensor is expert e's matrix.
  Tensor ffn_gate_inp;   // [n_embd, n_expert]  router
  Tensor ffn_gate_exps;  // [n_embd, n_ff_exp, n_expert]
  Tensor ffn_up_exps;    // [n_embd, n_ff_exp, n_expert]
  Tensor ffn_down_exps;  // [n_ff_exp, n_embd, n_expert]
  // Shared expert (qwen2moe), scaled by sigmoid(ffn_gate_inp_shexp . x).
  Tensor ffn_gate_inp_shexp;  // [n_embd]
  Tensor ffn_gate_shexp;      // [n_embd, n_ff_shexp]
  Tensor ffn_up_shexp;        // [n_embd, n_ff_shexp]
  Tensor ffn_down_shexp;      // [n_ff_shexp, n_embd]
};

struct Weights {
  Tensor token_embd;                 // [n_embd, n_vocab]; [n_embd_lens, n_vocab] under a lens
  Tensor lens_proj;                  // [n_embd_lens, n_embd] projection lens (training only)
  Tensor rope_freqs;                 // [n_rot/2] per-pair frequency divisors (llama3), optional
  Tensor output_norm;                // [n_embd]
  Tensor output;                     // [n_embd, n_vocab]; absent when tied to token_embd
  std::vector<LayerWeights> layers;  // n_layer

  // The output projection: `output`, or `token_embd` when the model is tied.
  const Tensor& output_matrix() const { return output.data ? output : token_embd; }
};

// What the visitor knows about a tensor slot besides the tensor itself.
struct TensorSpec {
  std::string name;  // GGUF name, e.g. "blk.3.attn_q.weight"
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // expected shape
  bool required = true;    // false: may be absent (tied output, rope_freqs, llama biases)
  bool plain_f32 = false;  // norms, biases, frequency factors: read as floats directly

  std::string shape_string() const;  // "[64, 320]"
};

using TensorVisitor = std::function<void(const TensorSpec& spec, Tensor& tensor)>;
using ConstTensorVisitor = std::function<void(const TensorSpec& spec, const Tensor& tensor)>;

// The starting value of element i (of n) of a gated delta-net vector that is not
// a norm weight — ssm_a (−A) and ssm_dt.bias, spread over the heads as Mamba-2
// initialises them: A in [1, 16], softplus(dt_bias) in [0.001, 0.1] — or nullopt
// for any other tensor. `toy init` and `toy train` both start from it.
std::optional<float> gdn_initial_value(std::string_view name, int64_t i, int64_t n);

// THE list of a model's tensors: calls fn for every tensor slot the config
// implies, in GGUF order (globals, then layers). Load, save, training and
// gradient tests all go through it. `weights.layers` must hold n_layer layers.
void for_each_tensor(const ModelConfig& config, Weights& weights, const TensorVisitor& fn);
// Read-only walk over the present tensors only.
void for_each_tensor(const ModelConfig& config, const Weights& weights,
                     const ConstTensorVisitor& fn);

}  // namespace toy
