// A small random hybrid model (gated delta-net and attention layers) written to a
// temporary GGUF, for the infer tests.
#pragma once

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gguf/writer.h"
#include "model/config.h"
#include "model/weights.h"
#include "support/fixtures.h"

namespace toy::testing {

// A random hybrid written the way `toy init` writes one: metadata from the config,
// tensors from the one visitor.
inline std::string write_hybrid(const std::string& pattern, int64_t n_layer, uint32_t seed = 1) {
  ModelConfig c;
  c.traits = &arch_traits("llama");
  c.n_vocab = 97;
  c.n_ctx_train = 512;
  c.n_embd = 48;
  c.n_layer = n_layer;
  c.n_ff = 80;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 12;
  c.head_dim_v = 12;
  c.rope.n_rot = 12;
  set_layer_kinds(c, parse_layer_pattern(pattern, n_layer));
  gguf::Writer writer;
  c.write_gguf_metadata(writer);
  writer.set("tokenizer.ggml.model", gguf::Value::string("none"));
  Weights slots;
  slots.layers.resize(static_cast<size_t>(n_layer));
  std::mt19937 rng(seed);
  std::vector<std::vector<float>> data;
  data.reserve(200);
  for_each_tensor(c, slots, [&](const TensorSpec& spec, Tensor&) {
    if (!spec.required) return;
    const int64_t n = spec.ne[0] * spec.ne[1] * spec.ne[2] * spec.ne[3];
    std::vector<float>& v = data.emplace_back(static_cast<size_t>(n));
    std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(float(spec.ne[0])));
    for (int64_t i = 0; i < n; ++i) {
      if (auto init = gdn_initial_value(spec.name, i, n)) {
        v[i] = *init;
      } else if (spec.plain_f32 && spec.n_dims == 1) {
        v[i] = 1.0f + 0.1f * normal(rng);  // norms
      } else {
        v[i] = normal(rng);
      }
    }
    writer.add_tensor(spec.name, DType::F32,
                      std::vector<int64_t>(spec.ne.begin(), spec.ne.begin() + spec.n_dims),
                      v.data());
  });
  const std::string path = temp_path("-hybrid.gguf");
  writer.write(path);
  return path;
}

}  // namespace toy::testing
