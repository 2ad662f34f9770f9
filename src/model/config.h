// ModelConfig: the hyper-parameters of a model, read from the `<arch>.` keys of
// a GGUF file (llama.cpp's key names), plus the architecture traits.
#pragma once

#include <cstdint>
#include <string>

#include "model/arch.h"

namespace toy {
namespace gguf {
class File;
class Writer;
}  // namespace gguf

enum class RopeScaling { None, Linear, Yarn };

struct RopeConfig {
  RopeMode mode = RopeMode::AdjacentPairs;
  int n_rot = 0;  // rope.dimension_count: leading dims of each head that rotate
  float freq_base = 10000.0f;
  RopeScaling scaling = RopeScaling::None;
  float scaling_factor = 1.0f;  // rope.scaling.factor
  float freq_scale = 1.0f;      // 1 / factor for linear and YaRN scaling
  int n_ctx_orig = 0;           // rope.scaling.original_context_length (YaRN ramp)
  // YaRN constants (llama.cpp defaults).
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
};

struct ModelConfig {
  const ArchTraits* traits = nullptr;  // never null after from_gguf
  std::string source;                  // file the config came from (for messages)

  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;  // context_length
  int64_t n_embd = 0;       // embedding_length
  // Training with a projection lens (toy train --donor-embeddings): token_embd is a donor's
  // frozen table of this width, mapped into n_embd by lens.proj.weight; 0: no lens. Never in
  // a GGUF: the export folds the lens into token_embd.
  int64_t n_embd_lens = 0;
  int64_t n_layer = 0;  // block_count
  int64_t n_ff = 0;     // feed_forward_length (dense FFN)
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;    // attention.key_length (default n_embd / n_head)
  int64_t head_dim_v = 0;  // attention.value_length (default head_dim)
  float rms_eps = 1e-5f;
  RopeConfig rope;

  float attn_scale = 0.0f;     // attention score scale, usually 1/sqrt(head_dim)
  float attn_softcap = 0.0f;   // 0: off
  float final_softcap = 0.0f;  // 0: off
  int64_t sliding_window = 0;  // 0: off; else the window of the sliding-window layers

  int64_t n_expert = 0;       // 0: dense FFN
  int64_t n_expert_used = 0;  // top-k
  int64_t n_ff_exp = 0;       // expert_feed_forward_length (default n_ff)
  int64_t n_ff_shexp = 0;     // expert_shared_feed_forward_length (Qwen2-MoE)

  bool has_vocab = false;  // tokenizer.ggml.model present and not "none"

  const ArchTraits& arch() const { return *traits; }
  int64_t q_dim() const { return n_head * head_dim; }       // width of the q projection
  int64_t kv_dim() const { return n_head_kv * head_dim; }   // width of k (one cache row)
  int64_t v_dim() const { return n_head_kv * head_dim_v; }  // width of v
  bool is_moe() const { return n_expert > 0; }
  // Whether layer `il` attends only inside the sliding window.
  bool layer_uses_window(int64_t il) const {
    return sliding_window > 0 && traits->sliding_window_period > 0 &&
           il % traits->sliding_window_period == 0;
  }

  // Reads and validates every hyper-parameter; throws toy::Error naming the key.
  static ModelConfig from_gguf(const gguf::File& file);
  // The inverse for a dense model: general.architecture and the `<arch>.` keys
  // that from_gguf reads (what `toy init` and `toy train` write).
  void write_gguf_metadata(gguf::Writer& writer) const;
};

}  // namespace toy
