// Architecture traits: the one registry of what differs between the supported
// members of the llama family. Everything the forward pass does differently
// per architecture is a flag here; the switch over architectures lives only
// in arch.cpp.
#pragma once

#include <string_view>

#include "kernels/activations.h"
#include "kernels/rope.h"

namespace toy {

enum class Arch { Llama, Qwen2, Qwen2Moe, Qwen3, Qwen3Moe, Gemma2, Olmoe };

enum class QkNorm {
  None,
  PerHead,    // RMSNorm of each head with a [head_dim] weight (Qwen3)
  FullWidth,  // RMSNorm of the whole q / k vector, [n_head*head_dim] weight (OLMoE)
};

struct ArchTraits {
  Arch arch;
  std::string_view name;  // general.architecture value and metadata key prefix
  RopeMode rope_mode;
  bool qkv_bias;  // attn_{q,k,v}.bias after the projections
  QkNorm qk_norm;
  bool post_norms;                  // post_attention_norm / post_ffw_norm before each residual add
  bool embedding_scale;             // embeddings multiplied by sqrt(n_embd)
  Activation ffn_activation;        // act(gate) * up
  bool softcaps;                    // attention and final logit softcapping (keys or defaults)
  int sliding_window_period;        // 0: none; 2: layers 0, 2, 4, ... use the sliding window
  bool experts_allowed;             // may have ffn_*_exps (mixture of experts)
  bool experts_required;            // must have them (the *moe architectures)
  bool renormalize_expert_weights;  // top-k router weights rescaled to sum to 1
  bool shared_expert;               // Qwen2-MoE: *_shexp gated by sigmoid(ffn_gate_inp_shexp . x)
};

// Traits for a general.architecture name; throws toy::Error listing the supported ones.
const ArchTraits& arch_traits(std::string_view name);
const ArchTraits& arch_traits(Arch arch);

}  // namespace toy
