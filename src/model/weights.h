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
#include <string>
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
  Tensor ffn_norm;        // [n_embd]
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

// THE list of a model's tensors: calls fn for every tensor slot the config
// implies, in GGUF order (globals, then layers). Load, save, training and
// gradient tests all go through it. `weights.layers` must hold n_layer layers.
void for_each_tensor(const ModelConfig& config, Weights& weights, const TensorVisitor& fn);
// Read-only walk over the present tensors only.
void for_each_tensor(const ModelConfig& config, const Weights& weights,
                     const ConstTensorVisitor& fn);

}  // namespace toy
