#include "model/config.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/value.h"
#include "kernels/attention.h"

namespace toy {
namespace {

// Reads `<arch>.<suffix>` keys and names the full key in every message.
class ArchKeys {
 public:
  ArchKeys(const gguf::File& file, std::string_view arch) : file_(file), prefix_(arch) {
    prefix_ += '.';
  }
  std::string key(std::string_view suffix) const { return prefix_ + std::string(suffix); }

  int64_t required(std::string_view suffix) const {
    const std::string k = key(suffix);
    if (!file_.has(k)) fail(file_.path(), ": missing metadata key ", k);
    return file_.get_integer(k);
  }
  int64_t integer_or(std::string_view suffix, int64_t fallback) const {
    return file_.get_integer_or(key(suffix), fallback);
  }
  double number_or(std::string_view suffix, double fallback) const {
    return file_.get_number_or(key(suffix), fallback);
  }
  std::string string_or(std::string_view suffix, std::string_view fallback) const {
    return file_.get_string_or(key(suffix), fallback);
  }

 private:
  const gguf::File& file_;
  std::string prefix_;
};

void require_positive(const gguf::File& file, const std::string& key, int64_t value) {
  if (value <= 0) fail(file.path(), ": metadata key ", key, " must be positive, found ", value);
}

int64_t vocab_size(const gguf::File& file, const ArchKeys& keys) {
  int64_t n = keys.integer_or("vocab_size", 0);
  if (n > 0) return n;
  if (auto tokens = file.find("tokenizer.ggml.tokens"))
    return static_cast<int64_t>(tokens->array_size());
  if (const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight")) return embd->ne[1];
  fail(file.path(), ": cannot tell the vocabulary size (no ", keys.key("vocab_size"),
       ", no tokenizer.ggml.tokens, no token_embd.weight)");
}

RopeConfig read_rope(const gguf::File& file, const ArchKeys& keys, const ArchTraits& traits,
                     int64_t head_dim) {
  RopeConfig rope;
  rope.mode = traits.rope_mode;
  rope.n_rot = static_cast<int>(keys.integer_or("rope.dimension_count", head_dim));
  if (rope.n_rot <= 0 || rope.n_rot > head_dim || rope.n_rot % 2 != 0)
    fail(file.path(), ": ", keys.key("rope.dimension_count"),
         " must be even and in [2, head_dim=", head_dim, "], found ", rope.n_rot);
  rope.freq_base = static_cast<float>(keys.number_or("rope.freq_base", 10000.0));
  if (!(rope.freq_base > 0.0f))
    fail(file.path(), ": ", keys.key("rope.freq_base"), " must be positive, found ",
         rope.freq_base);

  const std::string type = keys.string_or("rope.scaling.type", "none");
  rope.scaling_factor = static_cast<float>(keys.number_or("rope.scaling.factor", 0.0));
  // Older files give only the scale (1/factor) under rope.scale_linear.
  if (rope.scaling_factor == 0.0f) {
    const double linear = keys.number_or("rope.scale_linear", 0.0);
    rope.scaling_factor = linear > 0.0 ? static_cast<float>(linear) : 1.0f;
  }
  if (!(rope.scaling_factor > 0.0f))
    fail(file.path(), ": ", keys.key("rope.scaling.factor"), " must be positive, found ",
         rope.scaling_factor);
  if (type == "none") {
    rope.scaling = rope.scaling_factor != 1.0f ? RopeScaling::Linear : RopeScaling::None;
  } else if (type == "linear") {
    rope.scaling = RopeScaling::Linear;
  } else if (type == "yarn") {
    rope.scaling = RopeScaling::Yarn;
  } else {
    fail(file.path(), ": unsupported ", keys.key("rope.scaling.type"), " '", type,
         "' (supported: none, linear, yarn)");
  }
  rope.freq_scale = rope.scaling == RopeScaling::None ? 1.0f : 1.0f / rope.scaling_factor;
  rope.n_ctx_orig = static_cast<int>(keys.integer_or("rope.scaling.original_context_length",
                                                     keys.integer_or("context_length", 0)));
  if (rope.scaling == RopeScaling::Yarn && rope.n_ctx_orig <= 0)
    fail(file.path(), ": YaRN scaling needs ", keys.key("rope.scaling.original_context_length"));
  return rope;
}

// The per-layer kinds and, for a hybrid, the GDN sizes. head_count_kv may be a
// per-layer array whose zeros mark recurrent layers; its non-zero entries must
// agree (one attention shape for the whole model).
void read_layer_kinds(const gguf::File& file, const ArchKeys& keys, ModelConfig& c) {
  c.layer_kinds.assign(static_cast<size_t>(c.n_layer), LayerKind::Attention);
  const std::string kv_key = keys.key("attention.head_count_kv");
  if (auto kv = file.find(kv_key); kv && kv->type() == gguf::ValueType::ARRAY) {
    const std::vector<uint32_t> per_layer = kv->u32s();
    if (static_cast<int64_t>(per_layer.size()) != c.n_layer)
      fail(file.path(), ": ", kv_key, " has ", per_layer.size(), " entries for ", c.n_layer,
           " layers");
    c.n_head_kv = 0;
    for (int64_t il = 0; il < c.n_layer; ++il) {
      const int64_t n = per_layer[static_cast<size_t>(il)];
      if (n == 0) {
        c.layer_kinds[static_cast<size_t>(il)] = LayerKind::GatedDeltaNet;
      } else if (c.n_head_kv == 0) {
        c.n_head_kv = n;
      } else if (n != c.n_head_kv) {
        fail(file.path(), ": ", kv_key, " differs between attention layers (", c.n_head_kv, " and ",
             n, " at layer ", il, "); only one attention shape is supported");
      }
    }
    if (c.n_head_kv == 0) c.n_head_kv = c.n_head;  // no attention layer at all
  } else if (file.has(keys.key("full_attention_interval"))) {
    const int64_t interval = keys.required("full_attention_interval");
    require_positive(file, keys.key("full_attention_interval"), interval);
    for (int64_t il = 0; il < c.n_layer; ++il)
      if ((il + 1) % interval != 0)
        c.layer_kinds[static_cast<size_t>(il)] = LayerKind::GatedDeltaNet;
  }
  if (!c.has_gdn_layers()) return;
  GdnConfig& g = c.gdn;
  auto size = [&](const char* suffix, int64_t& out) {
    out = keys.required(suffix);
    require_positive(file, keys.key(suffix), out);
  };
  size("ssm.conv_kernel", g.d_conv);
  size("ssm.state_size", g.d_state);
  size("ssm.group_count", g.n_k_head);
  size("ssm.time_step_rank", g.n_v_head);
  size("ssm.inner_size", g.d_inner);
  if (g.n_v_head % g.n_k_head != 0)
    fail(file.path(), ": ", keys.key("ssm.time_step_rank"), " (", g.n_v_head,
         " value heads) must be a multiple of ", keys.key("ssm.group_count"), " (", g.n_k_head,
         ")");
  if (g.d_inner % g.n_v_head != 0)
    fail(file.path(), ": ", keys.key("ssm.inner_size"), " (", g.d_inner, ") must be a multiple of ",
         keys.key("ssm.time_step_rank"), " (", g.n_v_head, ")");
  if (c.is_moe())
    fail(file.path(), ": gated delta-net layers with a mixture of experts are not supported");
}

}  // namespace

std::vector<LayerKind> parse_layer_pattern(const std::string& pattern, int64_t n_layer) {
  std::vector<LayerKind> kinds;
  size_t begin = 0;
  while (begin <= pattern.size()) {
    const size_t end = std::min(pattern.find(',', begin), pattern.size());
    const std::string entry = pattern.substr(begin, end - begin);
    if (entry == "attn" || entry == "attention") {
      kinds.push_back(LayerKind::Attention);
    } else if (entry == "gdn") {
      kinds.push_back(LayerKind::GatedDeltaNet);
    } else {
      fail("--layer-pattern entry ", kinds.size() + 1, " is '", entry,
           "' (expected attn or gdn, comma-separated)");
    }
    begin = end + 1;
  }
  const int64_t n = static_cast<int64_t>(kinds.size());
  if (n_layer % n != 0)
    fail("--layer-pattern has ", n, " entries, which do not repeat evenly over ", n_layer,
         " layers");
  std::vector<LayerKind> all;
  for (int64_t il = 0; il < n_layer; ++il) all.push_back(kinds[static_cast<size_t>(il % n)]);
  return all;
}

void set_layer_kinds(ModelConfig& c, std::vector<LayerKind> kinds) {
  TOY_CHECK(static_cast<int64_t>(kinds.size()) == c.n_layer, "layer kinds for ", kinds.size(),
            " of ", c.n_layer, " layers");
  c.layer_kinds = std::move(kinds);
  c.gdn = {};
  if (!c.has_gdn_layers()) return;
  if (c.is_moe()) fail("gated delta-net layers with a mixture of experts are not supported");
  c.gdn.d_conv = 4;
  c.gdn.d_state = c.head_dim;
  // Fewer key than value heads, as Qwen3-Next (16 and 32) and as the attention's KV
  // heads: a GDN layer then costs about what a GQA attention layer does.
  c.gdn.n_k_head = c.n_head_kv;
  c.gdn.n_v_head = c.n_head;
  c.gdn.d_inner = c.n_head * c.head_dim;
}

bool ModelConfig::has_gdn_layers() const {
  for (LayerKind k : layer_kinds)
    if (k == LayerKind::GatedDeltaNet) return true;
  return false;
}

ModelConfig ModelConfig::from_gguf(const gguf::File& file) {
  ModelConfig c;
  c.source = file.path();
  if (!file.has("general.architecture")) fail(file.path(), ": missing key general.architecture");
  const std::string arch_name(file.get_string("general.architecture"));
  c.traits = &arch_traits(arch_name);
  const ArchKeys keys(file, arch_name);

  c.n_embd = keys.required("embedding_length");
  c.n_layer = keys.required("block_count");
  c.n_head = keys.required("attention.head_count");
  require_positive(file, keys.key("embedding_length"), c.n_embd);
  require_positive(file, keys.key("block_count"), c.n_layer);
  // Every layer has its own blk.N.* tensors: a count beyond the tensor table is a
  // damaged or crafted header, refused before anything is sized from it.
  if (c.n_layer > static_cast<int64_t>(file.tensors().size()))
    fail(file.path(), ": ", keys.key("block_count"), " = ", c.n_layer, " but the file has only ",
         file.tensors().size(), " tensors (each layer needs its own blk.N.* tensors)");
  require_positive(file, keys.key("attention.head_count"), c.n_head);
  if (auto kv = file.find(keys.key("attention.head_count_kv"));
      kv && kv->type() == gguf::ValueType::ARRAY) {
    c.n_head_kv = c.n_head;  // per layer: read_layer_kinds below
  } else {
    c.n_head_kv = keys.integer_or("attention.head_count_kv", c.n_head);
  }
  require_positive(file, keys.key("attention.head_count_kv"), c.n_head_kv);
  c.n_ctx_train = keys.integer_or("context_length", 2048);
  require_positive(file, keys.key("context_length"), c.n_ctx_train);
  c.n_ff = keys.integer_or("feed_forward_length", 0);
  if (c.n_ff < 0) fail(file.path(), ": ", keys.key("feed_forward_length"), " is negative");

  const int64_t default_head_dim = c.n_embd % c.n_head == 0 ? c.n_embd / c.n_head : 0;
  c.head_dim = keys.integer_or("attention.key_length", default_head_dim);
  require_positive(file, keys.key("attention.key_length"), c.head_dim);
  if (c.head_dim > kMaxAttentionHeadDim)
    fail(file.path(), ": ", keys.key("attention.key_length"), " = ", c.head_dim,
         " is larger than the ", kMaxAttentionHeadDim, " this engine supports");
  c.head_dim_v = keys.integer_or("attention.value_length", c.head_dim);
  if (c.head_dim_v != c.head_dim)
    fail(file.path(), ": ", keys.key("attention.value_length"), " (", c.head_dim_v,
         ") different from key_length (", c.head_dim, ") is not supported");

  c.rms_eps = static_cast<float>(keys.number_or("attention.layer_norm_rms_epsilon", 1e-5));
  if (!(c.rms_eps > 0.0f))
    fail(file.path(), ": ", keys.key("attention.layer_norm_rms_epsilon"), " must be positive");
  c.rope = read_rope(file, keys, *c.traits, c.head_dim);

  // Gemma 2 27B (46 layers) scales by 1/sqrt(n_embd/n_head) instead, as llama.cpp does.
  const bool gemma2_27b = c.traits->arch == Arch::Gemma2 && c.n_layer == 46;
  c.attn_scale =
      1.0f / std::sqrt(static_cast<float>(gemma2_27b ? c.n_embd / c.n_head : c.head_dim));
  if (c.traits->softcaps) {
    // llama.cpp's defaults for Gemma 2 when the keys are absent.
    c.attn_softcap = static_cast<float>(keys.number_or("attn_logit_softcapping", 50.0));
    c.final_softcap = static_cast<float>(keys.number_or("final_logit_softcapping", 30.0));
  }
  if (c.traits->sliding_window_period > 0) {
    c.sliding_window = keys.integer_or("attention.sliding_window", 4096);
    require_positive(file, keys.key("attention.sliding_window"), c.sliding_window);
  }

  c.n_expert = keys.integer_or("expert_count", 0);
  c.n_expert_used = keys.integer_or("expert_used_count", 0);
  if (c.n_expert < 0 || c.n_expert_used < 0)
    fail(file.path(), ": ", keys.key("expert_count"), " / expert_used_count must not be negative");
  if (c.n_expert > 0 && !c.traits->experts_allowed)
    fail(file.path(), ": architecture ", arch_name, " does not support experts but ",
         keys.key("expert_count"), " = ", c.n_expert);
  if (c.n_expert == 0 && c.traits->experts_required)
    fail(file.path(), ": architecture ", arch_name, " needs ", keys.key("expert_count"));
  if (c.n_expert > 0 && (c.n_expert_used <= 0 || c.n_expert_used > c.n_expert))
    fail(file.path(), ": ", keys.key("expert_used_count"), " must be in [1, ", c.n_expert,
         "], found ", c.n_expert_used);
  c.n_ff_exp = keys.integer_or("expert_feed_forward_length", c.n_ff);
  if (c.traits->shared_expert)
    c.n_ff_shexp = keys.integer_or("expert_shared_feed_forward_length", c.n_ff_exp);
  if (c.n_expert > 0) require_positive(file, keys.key("expert_feed_forward_length"), c.n_ff_exp);
  if (c.n_expert == 0) require_positive(file, keys.key("feed_forward_length"), c.n_ff);

  read_layer_kinds(file, keys, c);
  if (c.n_head % c.n_head_kv != 0)
    fail(file.path(), ": ", keys.key("attention.head_count"), " (", c.n_head,
         ") must be a multiple of ", keys.key("attention.head_count_kv"), " (", c.n_head_kv, ")");

  c.n_vocab = vocab_size(file, keys);
  require_positive(file, keys.key("vocab_size"), c.n_vocab);
  const std::string tokenizer = file.get_string_or("tokenizer.ggml.model", "none");
  c.has_vocab = tokenizer != "none" && file.has("tokenizer.ggml.tokens");
  return c;
}

}  // namespace toy
