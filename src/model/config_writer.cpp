// ModelConfig -> GGUF metadata: the keys llama.cpp (and ModelConfig::from_gguf)
// read for a dense llama-family model, written in one place for every producer.
#include "gguf/writer.h"
#include "model/config.h"

namespace toy {

void ModelConfig::write_gguf_metadata(gguf::Writer& writer) const {
  using gguf::Value;
  const std::string arch_name(arch().name);
  const std::string a = arch_name + ".";
  auto u32 = [](int64_t v) { return Value::u32(static_cast<uint32_t>(v)); };
  writer.set("general.architecture", Value::string(arch_name));
  writer.set(a + "vocab_size", u32(n_vocab));
  writer.set(a + "context_length", u32(n_ctx_train));
  writer.set(a + "embedding_length", u32(n_embd));
  writer.set(a + "block_count", u32(n_layer));
  writer.set(a + "feed_forward_length", u32(n_ff));
  writer.set(a + "attention.head_count", u32(n_head));
  if (has_gdn_layers()) {
    // Per layer, 0 for a gated delta-net layer (how llama.cpp marks recurrent layers).
    std::vector<uint32_t> per_layer;
    for (int64_t il = 0; il < n_layer; ++il)
      per_layer.push_back(is_gdn(il) ? 0u : static_cast<uint32_t>(n_head_kv));
    writer.set(a + "attention.head_count_kv", Value::u32s(per_layer));
    writer.set(a + "ssm.conv_kernel", u32(gdn.d_conv));
    writer.set(a + "ssm.state_size", u32(gdn.d_state));
    writer.set(a + "ssm.group_count", u32(gdn.n_k_head));
    writer.set(a + "ssm.time_step_rank", u32(gdn.n_v_head));
    writer.set(a + "ssm.inner_size", u32(gdn.d_inner));
  } else {
    writer.set(a + "attention.head_count_kv", u32(n_head_kv));
  }
  // llama.cpp derives the head width from n_embd / n_head unless these are present.
  if (head_dim * n_head != n_embd || head_dim_v != head_dim) {
    writer.set(a + "attention.key_length", u32(head_dim));
    writer.set(a + "attention.value_length", u32(head_dim_v));
  }
  writer.set(a + "attention.layer_norm_rms_epsilon", Value::f32(rms_eps));
  writer.set(a + "rope.freq_base", Value::f32(rope.freq_base));
  writer.set(a + "rope.dimension_count", u32(rope.n_rot));
  // Gemma 2: written even when they are llama.cpp's defaults, so no reader guesses.
  if (arch().softcaps) {
    writer.set(a + "attn_logit_softcapping", Value::f32(attn_softcap));
    writer.set(a + "final_logit_softcapping", Value::f32(final_softcap));
  }
  if (arch().sliding_window_period > 0)
    writer.set(a + "attention.sliding_window", u32(sliding_window));
}

}  // namespace toy
