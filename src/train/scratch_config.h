// The ModelConfig of a model trained from scratch (no GGUF to read it from):
// the shape flags of `toy train` turned into the same config a loaded model has.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace toy::train {

struct ScratchShape {
  // llama, qwen2 (q/k/v biases), qwen3 (per-head q/k norm) or gemma2 (post norms,
  // GeGLU, softcaps, sliding window on even layers, scaled embeddings)
  std::string arch = "llama";
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // 0: n_head
  int64_t head_dim = 0;   // 0: n_embd / n_head
  int64_t n_ff = 0;
  int64_t n_ctx = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  // Gemma 2 only (0: llama.cpp's defaults when the GGUF keys are absent: 50, 30, 4096).
  float attn_softcap = 0.0f;
  float final_softcap = 0.0f;
  int64_t sliding_window = 0;
  // Mixture of experts (mixtral-style llama, qwen2moe, qwen3moe, olmoe): n_expert
  // experts, top n_expert_used, experts of n_ff_exp (0: n_ff), Qwen2-MoE's shared
  // expert of n_ff_shexp (0: n_ff). Such a model trains only with its experts and
  // router frozen over a base (the gradient checks), not from scratch.
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_exp = 0;
  int64_t n_ff_shexp = 0;
  // Per-layer kinds, repeated over the layers ("attn,gdn,gdn,gdn"; empty: all
  // attention): gated delta-net layers sized as model/config.h set_layer_kinds.
  std::string layer_pattern;
};

// Validates the shape (toy::Error naming the flag at fault) and builds the config.
ModelConfig scratch_config(const ScratchShape& shape);

}  // namespace toy::train
