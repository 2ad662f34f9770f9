#include "quant/quant_policy.h"

#include <charconv>

namespace toy::quant {
namespace {

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

// The block index N of a tensor named "blk.N.<...>", nullopt for tensors outside the blocks.
std::optional<int> layer_of(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  int layer = 0;
  const char* begin = name.data() + kPrefix.size();
  const char* end = name.data() + name.size();
  const auto [ptr, ec] = std::from_chars(begin, end, layer);
  if (ec != std::errc() || ptr == end || *ptr != '.') return std::nullopt;
  return layer;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third layer
// in between get the bigger type, where quantization error hurts perplexity most.
bool use_more_bits(int layer, int n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

bool is_medium(Mix mix) {
  return mix == Mix::kQ4_K_M || mix == Mix::kQ5_K_M;
}

}  // namespace

DType mixture_type(Mix mix, DType base, std::string_view name, int64_t row_length,
                   const ModelLayout& model) {
  if (mix == Mix::kPure) return base;
  const std::optional<int> layer = layer_of(name);
  const int n_layer = model.n_layer;
  // The output projection (or the token embedding standing in for it when tied) decides every
  // logit, so it gets Q6_K; Q8_0 when its rows do not fit the base type's 256 block.
  if (name == "output.weight" || (!model.has_output && name == "token_embd.weight")) {
    return row_length % dtype_info(base).block_size != 0 ? DType::Q8_0 : DType::Q6_K;
  }
  if (name == "token_embd.weight") return base;
  if (contains(name, "attn_v.weight")) {
    // Mixtral-style: V is 8x smaller than the experts, so Q8_0 costs little.
    if (model.n_expert == 8) return DType::Q8_0;
    if (is_medium(mix) && layer && use_more_bits(*layer, n_layer)) return DType::Q6_K;
    if (mix == Mix::kQ4_K_S && layer && *layer < 4) return DType::Q5_K;
    return base;
  }
  if (contains(name, "attn_k.weight")) return model.n_expert == 8 ? DType::Q8_0 : base;
  if (contains(name, "ffn_down")) {
    if (is_medium(mix) && layer && use_more_bits(*layer, n_layer)) return DType::Q6_K;
    if (mix == Mix::kQ4_K_S && layer && *layer < n_layer / 8) return DType::Q5_K;
    return base;
  }
  if (contains(name, "attn_output.weight")) {
    const bool q4 = mix == Mix::kQ4_K_S || mix == Mix::kQ4_K_M;
    return model.n_expert == 8 && q4 ? DType::Q5_K : base;
  }
  if (contains(name, "attn_qkv.weight")) {  // fused QKV (phi, gpt-neox style)
    if (mix == Mix::kQ4_K_M) return DType::Q5_K;
    if (mix == Mix::kQ5_K_M) return DType::Q6_K;
  }
  return base;
}

std::optional<DType> fitting_type(DType wanted, int64_t row_length) {
  const auto fits = [row_length](DType type) {
    return row_length % dtype_info(type).block_size == 0;
  };
  if (fits(wanted)) return wanted;
  // llama.cpp's fallbacks have blocks of 32 and at least the wanted bits per weight.
  DType fallback;
  switch (wanted) {
    // llama.cpp uses IQ4_NL here; toy has no IQ4_NL, and Q4_0 is the block-32 type of the
    // same size (4.5 bits per weight).
    case DType::Q2_K:
    case DType::Q3_K:
      fallback = DType::Q4_0;
      break;
    case DType::Q4_K:
      fallback = DType::Q5_0;
      break;
    case DType::Q5_K:
      fallback = DType::Q5_1;
      break;
    case DType::Q6_K:
      fallback = DType::Q8_0;
      break;
    default:
      return std::nullopt;  // llama.cpp refuses; the caller keeps the source type
  }
  // llama.cpp falls back once more to F16 here; keeping the source type instead is lossless.
  if (!fits(fallback)) return std::nullopt;
  return fallback;
}

}  // namespace toy::quant
