// The inference forward (KV cache) as the training tests' reference: logits (T, n_vocab)
// of `tokens` at positions 0..T-1, exact arithmetic, an F32 cache, optional LoRA adapters.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/compute.h"
#include "model/forward.h"
#include "model/lora.h"
#include "model/model.h"

namespace toy::testing {

inline std::vector<float> inference_logits(const Model& model, std::span<const int32_t> tokens,
                                           const LoraSet* lora, const Compute& cx) {
  const ModelConfig& c = model.config;
  const int64_t T = static_cast<int64_t>(tokens.size());
  std::vector<std::vector<float>> rows;
  std::vector<KvLayer> cache;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    if (c.is_gdn(il)) {  // a recurrent layer: its state and conv tail instead of rows
      KvLayer layer;
      const GdnConfig& g = c.gdn;
      rows.emplace_back(static_cast<size_t>(g.state_floats()));
      layer.state = Tensor::view(DType::F32, rows.back().data(), {g.d_v(), g.d_state, g.n_v_head});
      rows.emplace_back(static_cast<size_t>(g.conv_tail_floats()));
      layer.conv = Tensor::view(DType::F32, rows.back().data(), {g.conv_channels(), g.d_conv - 1});
      cache.push_back(layer);
      continue;
    }
    rows.emplace_back(static_cast<size_t>(T * c.kv_dim()));
    KvLayer layer;
    layer.k = Tensor::view(DType::F32, rows.back().data(), {c.kv_dim(), T});
    rows.emplace_back(static_cast<size_t>(T * c.v_dim()));
    layer.v = Tensor::view(DType::F32, rows.back().data(), {c.v_dim(), T});
    cache.push_back(layer);
  }
  ForwardScratch scratch(c, T, T, DType::F32, cx.size());
  std::vector<float> logits(static_cast<size_t>(T * c.n_vocab));
  forward(model, tokens, 0, cache, scratch, LogitRows::All, logits.data(),
          LinearContext{cx, MatmulMode::Exact, lora});
  return logits;
}

}  // namespace toy::testing
