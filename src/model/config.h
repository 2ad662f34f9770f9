// ModelConfig: the hyper-parameters of a model, read from the `<arch>.` keys of
// a GGUF file (llama.cpp's key names), plus the architecture traits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// What mixes the tokens of layer il: softmax attention over a KV cache, or a
// gated delta-net (kernels/gated_delta_net.h) over a recurrent state.
enum class LayerKind : uint8_t { Attention, GatedDeltaNet };

// The gated delta-net block's sizes, llama.cpp's qwen3next keys `<arch>.ssm.*`.
struct GdnConfig {
  int64_t d_conv = 0;    // ssm.conv_kernel: causal depthwise convolution width (4)
  int64_t d_state = 0;   // ssm.state_size: key head width d_k
  int64_t n_k_head = 0;  // ssm.group_count: key/query heads
  int64_t n_v_head = 0;  // ssm.time_step_rank: value heads (one state each)
  int64_t d_inner = 0;   // ssm.inner_size: n_v_head · d_v

  int64_t d_v() const { return n_v_head > 0 ? d_inner / n_v_head : 0; }
  int64_t qk_dim() const { return n_k_head * d_state; }             // width of q (and of k)
  int64_t conv_channels() const { return 2 * qk_dim() + d_inner; }  // q | k | v
  int64_t state_floats() const { return n_v_head * d_state * d_v(); }
  int64_t conv_tail_floats() const { return (d_conv - 1) * conv_channels(); }
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

  // (n_layer) the kind of each layer. Read from `<arch>.attention.head_count_kv` as
  // a per-layer array (0: a recurrent layer, llama.cpp's convention for hybrids) or
  // `<arch>.full_attention_interval` (qwen3next: every interval-th layer attends);
  // a model with neither is all attention.
  std::vector<LayerKind> layer_kinds;
  GdnConfig gdn;  // sizes of the GDN layers (zero without them)

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

  // An empty layer_kinds (a config built in code) is all attention.
  LayerKind layer_kind(int64_t il) const {
    return layer_kinds.empty() ? LayerKind::Attention : layer_kinds[static_cast<size_t>(il)];
  }
  bool is_gdn(int64_t il) const { return layer_kind(il) == LayerKind::GatedDeltaNet; }
  bool has_gdn_layers() const;

  // Reads and validates every hyper-parameter; throws toy::Error naming the key.
  static ModelConfig from_gguf(const gguf::File& file);
  // The inverse for a dense model: general.architecture and the `<arch>.` keys
  // that from_gguf reads (what `toy init` and `toy train` write).
  void write_gguf_metadata(gguf::Writer& writer) const;
};

// Parses a --layer-pattern such as "attn,gdn,gdn,gdn": one kind per layer, or a
// shorter pattern repeated over n_layer layers. Throws toy::Error naming the bad entry.
std::vector<LayerKind> parse_layer_pattern(const std::string& pattern, int64_t n_layer);

// Makes c a hybrid of the given kinds (n_layer of them) with GDN sizes matching
// its attention: a key head per KV head, a value head per query head, d_k = d_v =
// head_dim, a convolution of 4 (Qwen3-Next's kernel).
void set_layer_kinds(ModelConfig& c, std::vector<LayerKind> kinds);

}  // namespace toy
