// Qwen2-MoE (shared expert behind a sigmoid gate, routed weights not renormalised)
// has no llama.cpp fixture, so it is checked by construction: a qwen2moe file
// built from qwen2.gguf whose single routed expert is the dense FFN with its
// down projection halved, and whose shared expert is the dense FFN behind a
// zero gate (sigmoid(0) = 1/2), computes 1·(FFN/2) + (1/2)·FFN = FFN — the
// logits of the qwen2 fixture.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "infer/session.h"
#include "model/model.h"
#include "support/fixtures.h"
#include "support/model_reference.h"

namespace toy {
namespace {

std::vector<float> as_floats(const Tensor& t) {
  const float* p = t.ptr<const float>();
  return std::vector<float>(p, p + t.numel());
}

std::string build_qwen2moe(std::map<std::string, std::vector<float>>& storage) {
  const auto dense = gguf::File::open(testing::fixture_path("models/qwen2.gguf"));
  gguf::Writer writer;
  for (size_t i = 0; i < dense->metadata_count(); ++i) {
    const gguf::ValueRef v = dense->metadata(i);
    std::string key(v.key());
    if (key.rfind("qwen2.", 0) == 0) key = "qwen2moe." + key.substr(6);
    writer.set(key, v.to_value());
  }
  writer.set("general.architecture", gguf::Value::string("qwen2moe"));
  const int64_t n_embd = dense->get_integer("qwen2.embedding_length");
  const int64_t n_ff = dense->get_integer("qwen2.feed_forward_length");
  writer.set("qwen2moe.expert_count", gguf::Value::u32(1));
  writer.set("qwen2moe.expert_used_count", gguf::Value::u32(1));
  writer.set("qwen2moe.expert_feed_forward_length", gguf::Value::u32(static_cast<uint32_t>(n_ff)));
  writer.set("qwen2moe.expert_shared_feed_forward_length",
             gguf::Value::u32(static_cast<uint32_t>(n_ff)));

  auto add = [&](const std::string& name, std::vector<int64_t> ne, std::vector<float> data) {
    storage[name] = std::move(data);
    writer.add_tensor(name, DType::F32, std::move(ne), storage[name].data());
  };
  for (const gguf::TensorInfo& info : dense->tensors()) {
    const std::string name(info.name);
    const Tensor t = dense->tensor(info);
    const auto dot = name.find(".ffn_");
    if (dot == std::string::npos || name.find("ffn_norm") != std::string::npos) {
      add(name, std::vector<int64_t>(info.ne.begin(), info.ne.begin() + info.n_dims), as_floats(t));
      continue;
    }
    const std::string prefix = name.substr(0, dot + 1);                             // "blk.N."
    const std::string kind = name.substr(dot + 1, name.find(".weight") - dot - 1);  // ffn_up
    std::vector<float> values = as_floats(t);
    add(prefix + kind + "_shexp.weight", {info.ne[0], info.ne[1]}, values);
    if (kind == "ffn_down")
      for (float& x : values) x *= 0.5f;
    add(prefix + kind + "_exps.weight", {info.ne[0], info.ne[1], 1}, values);
    if (kind == "ffn_gate") {
      add(prefix + "ffn_gate_inp.weight", {n_embd, 1}, std::vector<float>(n_embd, 0.25f));
      add(prefix + "ffn_gate_inp_shexp.weight", {n_embd}, std::vector<float>(n_embd, 0.0f));
    }
  }
  const std::string path = testing::temp_path(".gguf");
  writer.write(path);
  return path;
}

TEST(Qwen2Moe, SharedExpertConstructionReproducesQwen2) {
  std::map<std::string, std::vector<float>> storage;
  const std::string path = build_qwen2moe(storage);
  const Model model = Model::load(path);
  EXPECT_EQ(model.config.arch().arch, Arch::Qwen2Moe);
  EXPECT_EQ(model.config.n_expert, 1);
  EXPECT_NE(model.weights.layers[0].ffn_gate_inp_shexp.data, nullptr);

  const std::vector<testing::Reference> refs = testing::load_references("qwen2");
  ThreadPool pool(2);
  for (MatmulMode mode : {MatmulMode::Exact, MatmulMode::Fast}) {
    Session session(model, pool, {.kv_type = DType::F32, .mode = mode});
    std::vector<float> logits(refs[0].logits.size());
    session.prefill_all(refs[0].tokens, logits.data());
    const testing::Closeness c = testing::compare_logits(logits, refs[0].logits);
    EXPECT_TRUE(c.ok()) << "max " << c.max_abs << " (limit " << c.max_limit << "), rms " << c.rms
                        << " (limit " << c.rms_limit << ")";
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace toy
