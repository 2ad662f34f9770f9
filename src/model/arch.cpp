#include "model/arch.h"

#include "core/error.h"

namespace toy {
namespace {

// The registry. Facts from DESIGN.md "Model semantics" (they match llama.cpp's
// graph builders for the same architectures).
constexpr ArchTraits kArchTraits[] = {
    {.arch = Arch::Llama,
     .name = "llama",
     .rope_mode = RopeMode::AdjacentPairs,
     .qkv_bias = false,
     .qk_norm = QkNorm::None,
     .post_norms = false,
     .embedding_scale = false,
     .ffn_activation = Activation::Silu,
     .softcaps = false,
     .sliding_window_period = 0,
     .experts_allowed = true,
     .experts_required = false,
     .renormalize_expert_weights = true,
     .shared_expert = false},
    {.arch = Arch::Qwen2,
     .name = "qwen2",
     .rope_mode = RopeMode::HalfSplit,
     .qkv_bias = true,
     .qk_norm = QkNorm::None,
     .post_norms = false,
     .embedding_scale = false,
     .ffn_activation = Activation::Silu,
     .softcaps = false,
     .sliding_window_period = 0,
     .experts_allowed = false,
     .experts_required = false,
     .renormalize_expert_weights = false,
     .shared_expert = false},
    {.arch = Arch::Qwen2Moe,
     .name = "qwen2moe",
     .rope_mode = RopeMode::HalfSplit,
     .qkv_bias = true,
     .qk_norm = QkNorm::None,
     .post_norms = false,
     .embedding_scale = false,
     .ffn_activation = Activation::Silu,
     .softcaps = false,
     .sliding_window_period = 0,
     .experts_allowed = true,
     .experts_required = true,
     .renormalize_expert_weights = false,
     .shared_expert = true},
    {.arch = Arch::Qwen3,
     .name = "qwen3",
     .rope_mode = RopeMode::HalfSplit,
     .qkv_bias = false,
     .qk_norm = QkNorm::PerHead,
     .post_norms = false,
     .embedding_scale = false,
     .ffn_activation = Activation::Silu,
     .softcaps = false,
     .sliding_window_period = 0,
     .experts_allowed = false,
     .experts_required = false,
     .renormalize_expert_weights = false,
     .shared_expert = false},
    {.arch = Arch::Qwen3Moe,
     .name = "qwen3moe",
     .rope_mode = RopeMode::HalfSplit,
     .qkv_bias = false,
     .qk_norm = QkNorm::PerHead,
     .post_norms = false,
     .embedding_scale = false,
     .ffn_activation = Activation::Silu,
     .softcaps = false,
     .sliding_window_period = 0,
     .experts_allowed = true,
     .experts_required = true,
     .renormalize_expert_weights = true,
     .shared_expert = false},
    {.arch = Arch::Gemma2,
     .name = "gemma2",
     .rope_mode = RopeMode::HalfSplit,
     .qkv_bias = false,
     .qk_norm = QkNorm::None,
     .post_norms = true,
     .embedding_scale = true,
     .ffn_activation = Activation::GeluTanh,
     .softcaps = true,
     .sliding_window_period = 2,
     .experts_allowed = false,
     .experts_required = false,
     .renormalize_expert_weights = false,
     .shared_expert = false},
    {.arch = Arch::Olmoe,
     .name = "olmoe",
     .rope_mode = RopeMode::HalfSplit,
     .qkv_bias = false,
     .qk_norm = QkNorm::FullWidth,
     .post_norms = false,
     .embedding_scale = false,
     .ffn_activation = Activation::Silu,
     .softcaps = false,
     .sliding_window_period = 0,
     .experts_allowed = true,
     .experts_required = true,
     .renormalize_expert_weights = false,
     .shared_expert = false},
};

}  // namespace

const ArchTraits& arch_traits(std::string_view name) {
  std::string supported;
  for (const ArchTraits& traits : kArchTraits) {
    if (traits.name == name) return traits;
    supported += supported.empty() ? "" : ", ";
    supported += traits.name;
  }
  fail("unsupported architecture '", name, "' (general.architecture); supported: ", supported);
}

const ArchTraits& arch_traits(Arch arch) {
  for (const ArchTraits& traits : kArchTraits)
    if (traits.arch == arch) return traits;
  TOY_CHECK(false, "architecture missing from the registry");
  __builtin_unreachable();
}

}  // namespace toy
