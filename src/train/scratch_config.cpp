#include "train/scratch_config.h"

#include <cmath>

#include "core/error.h"
#include "train/model.h"

namespace toy::train {

ModelConfig scratch_config(const ScratchShape& s) {
  auto positive = [](const char* flag, int64_t v) {
    if (v <= 0) fail(flag, " must be positive, got ", v);
  };
  positive("--n-vocab", s.n_vocab);
  positive("--n-embd", s.n_embd);
  positive("--n-layer", s.n_layer);
  positive("--n-head", s.n_head);
  positive("--n-ff", s.n_ff);
  positive("--ctx", s.n_ctx);
  ModelConfig c;
  c.traits = &arch_traits(s.arch);
  c.source = "--arch " + s.arch;
  c.n_vocab = s.n_vocab;
  c.n_ctx_train = s.n_ctx;
  c.n_embd = s.n_embd;
  c.n_layer = s.n_layer;
  c.n_ff = s.n_ff;
  c.n_head = s.n_head;
  c.n_head_kv = s.n_head_kv > 0 ? s.n_head_kv : s.n_head;
  if (s.n_head % c.n_head_kv != 0)
    fail("--n-head ", s.n_head, " must be a multiple of --n-head-kv ", c.n_head_kv);
  if (s.head_dim > 0) {
    c.head_dim = s.head_dim;
  } else {
    if (s.n_embd % s.n_head != 0)
      fail("--n-embd ", s.n_embd, " must be a multiple of --n-head ", s.n_head);
    c.head_dim = s.n_embd / s.n_head;
  }
  if (c.head_dim % 2 != 0) fail("the head dimension must be even for RoPE, got ", c.head_dim);
  c.head_dim_v = c.head_dim;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));  // as ModelConfig::from_gguf
  c.rms_eps = s.rms_eps;
  c.rope.mode = c.traits->rope_mode;
  c.rope.n_rot = static_cast<int>(c.head_dim);
  c.rope.freq_base = s.rope_base;
  if (c.traits->softcaps) {
    c.attn_softcap = s.attn_softcap > 0.0f ? s.attn_softcap : 50.0f;
    c.final_softcap = s.final_softcap > 0.0f ? s.final_softcap : 30.0f;
  }
  if (c.traits->sliding_window_period > 0)
    c.sliding_window = s.sliding_window > 0 ? s.sliding_window : 4096;
  if (s.n_expert == 0 && c.traits->experts_required)
    fail("--arch ", s.arch, " is a mixture of experts, which cannot be trained from scratch: ",
         "its experts and router only stay frozen (toy finetune trains the rest)");
  if (s.n_expert != 0) {
    if (!c.traits->experts_allowed) fail("--arch ", s.arch, " has no mixture of experts");
    if (s.n_expert < 0 || s.n_expert_used <= 0 || s.n_expert_used > s.n_expert)
      fail("a mixture of experts needs 0 < experts used <= experts, got ", s.n_expert_used, " of ",
           s.n_expert);
    c.n_expert = s.n_expert;
    c.n_expert_used = s.n_expert_used;
    c.n_ff_exp = s.n_ff_exp > 0 ? s.n_ff_exp : s.n_ff;
    if (c.traits->shared_expert) c.n_ff_shexp = s.n_ff_shexp > 0 ? s.n_ff_shexp : s.n_ff;
  }
  if (!s.layer_pattern.empty()) set_layer_kinds(c, parse_layer_pattern(s.layer_pattern, c.n_layer));
  c.has_vocab = true;
  check_trainable(c);
  return c;
}

}  // namespace toy::train
