// ModelConfig from GGUF metadata, the tensor visitor, and the load errors a
// broken file gets (each names the tensor or key and what was expected).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "core/error.h"
#include "gguf/copy.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/model.h"
#include "support/fixtures.h"

namespace toy {
namespace {

std::string model_path(const std::string& name) {
  return testing::fixture_path("models/" + name + ".gguf");
}

TEST(ModelConfig, Llama) {
  const Model m = Model::load(model_path("llama"));
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.arch().arch, Arch::Llama);
  EXPECT_EQ(c.n_vocab, 320);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_ff, 128);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rope.n_rot, 16);
  EXPECT_EQ(c.rope.mode, RopeMode::AdjacentPairs);
  EXPECT_EQ(c.rope.scaling, RopeScaling::None);
  EXPECT_FALSE(c.is_moe());
  EXPECT_FALSE(c.has_vocab);
  EXPECT_NE(m.weights.output.data, nullptr);
}

TEST(ModelConfig, QwenFamily) {
  const ModelConfig qwen3 = Model::load(model_path("qwen3")).config;
  EXPECT_EQ(qwen3.head_dim, 32);  // independent of n_embd / n_head = 16
  EXPECT_EQ(qwen3.q_dim(), 128);
  EXPECT_EQ(qwen3.arch().qk_norm, QkNorm::PerHead);
  EXPECT_EQ(qwen3.rope.mode, RopeMode::HalfSplit);
  EXPECT_FLOAT_EQ(qwen3.rope.freq_base, 1e6f);

  const ModelConfig yarn = Model::load(model_path("qwen2-yarn")).config;
  EXPECT_EQ(yarn.rope.scaling, RopeScaling::Yarn);
  EXPECT_FLOAT_EQ(yarn.rope.freq_scale, 0.25f);
  EXPECT_EQ(yarn.rope.n_ctx_orig, 32);

  const ModelConfig moe = Model::load(model_path("qwen3moe")).config;
  EXPECT_EQ(moe.n_expert, 8);
  EXPECT_EQ(moe.n_expert_used, 3);
  EXPECT_EQ(moe.n_ff_exp, 48);
  EXPECT_TRUE(moe.arch().renormalize_expert_weights);
}

TEST(ModelConfig, Gemma2) {
  const ModelConfig c = Model::load(model_path("gemma2")).config;
  EXPECT_FLOAT_EQ(c.attn_softcap, 50.0f);
  EXPECT_FLOAT_EQ(c.final_softcap, 30.0f);
  EXPECT_EQ(c.sliding_window, 8);
  EXPECT_TRUE(c.layer_uses_window(0));
  EXPECT_FALSE(c.layer_uses_window(1));
  EXPECT_TRUE(c.layer_uses_window(2));
  EXPECT_TRUE(c.arch().post_norms);
  EXPECT_EQ(c.arch().ffn_activation, Activation::GeluTanh);
}

TEST(ModelConfig, ExpertsAndScaling) {
  const ModelConfig olmoe = Model::load(model_path("olmoe")).config;
  EXPECT_EQ(olmoe.arch().qk_norm, QkNorm::FullWidth);
  EXPECT_FALSE(olmoe.arch().renormalize_expert_weights);
  const ModelConfig mixtral = Model::load(model_path("mixtral")).config;
  EXPECT_EQ(mixtral.arch().arch, Arch::Llama);
  EXPECT_EQ(mixtral.n_expert, 4);
  EXPECT_TRUE(mixtral.arch().renormalize_expert_weights);
  const ModelConfig linear = Model::load(model_path("llama-linear")).config;
  EXPECT_EQ(linear.rope.scaling, RopeScaling::Linear);
  EXPECT_FLOAT_EQ(linear.rope.freq_scale, 0.5f);
  const Model llama3 = Model::load(model_path("llama3-rope"));
  EXPECT_EQ(llama3.weights.rope_freqs.ne[0], 16);
  EXPECT_EQ(Model::load(model_path("stories260K")).config.rope.n_rot, 8);
}

// The visitor lists exactly the tensors of every fixture file.
TEST(ForEachTensor, CoversEveryFixtureTensor) {
  for (const char* name :
       {"llama", "llama-tied", "qwen2", "qwen3", "gemma2", "olmoe", "mixtral", "qwen3moe",
        "llama3-rope", "qwen2-yarn", "llama-linear", "llama-q4_k_m", "stories260K"}) {
    const Model m = Model::load(model_path(name));
    std::set<std::string> visited, in_file;
    for_each_tensor(m.config, m.weights, [&](const TensorSpec& spec, const Tensor& t) {
      EXPECT_TRUE(visited.insert(spec.name).second) << spec.name << " visited twice";
      for (int d = 0; d < 4; ++d) EXPECT_EQ(t.ne[d], spec.ne[d]) << spec.name;
    });
    for (const auto& info : m.file->tensors()) in_file.insert(std::string(info.name));
    EXPECT_EQ(visited, in_file) << name;
  }
}

TEST(ForEachTensor, TiedOutputUsesTheEmbedding) {
  const Model m = Model::load(model_path("llama-tied"));
  EXPECT_EQ(m.weights.output.data, nullptr);
  EXPECT_EQ(m.weights.output_matrix().data, m.weights.token_embd.data);
  EXPECT_EQ(m.config.n_head_kv, 1);
}

// Copies llama.gguf with `edit` applied to the writer (tensors re-added by `keep`).
std::string broken_copy(const std::function<void(gguf::Writer&)>& edit_metadata,
                        const std::function<bool(const gguf::TensorInfo&, gguf::Writer&,
                                                 const gguf::File&)>& add_tensor) {
  const auto file = gguf::File::open(model_path("llama"));
  gguf::Writer writer;
  gguf::copy_metadata(*file, writer);
  edit_metadata(writer);
  for (const auto& info : file->tensors()) {
    if (add_tensor(info, writer, *file)) continue;
    writer.add_tensor(std::string(info.name), info.type,
                      std::vector<int64_t>(info.ne.begin(), info.ne.begin() + info.n_dims),
                      file->tensor(info).data);
  }
  const std::string path = testing::temp_path(".gguf");
  writer.write(path);
  return path;
}

// The message Model::load throws for `path` (which is removed afterwards).
std::string load_error(const std::string& path) {
  std::string message = "(no error)";
  try {
    Model::load(path);
  } catch (const Error& e) {
    message = e.what();
  }
  std::filesystem::remove(path);
  return message;
}

auto no_metadata_edit = [](gguf::Writer&) {};

TEST(ModelLoad, MissingTensorNamesItAndItsShape) {
  const std::string path = broken_copy(no_metadata_edit, [](const auto& info, auto&, const auto&) {
    return info.name == "blk.1.attn_k.weight";  // dropped
  });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("missing tensor blk.1.attn_k.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[64, 32]"), std::string::npos) << msg;
}

TEST(ModelLoad, MisShapedTensorNamesBothShapes) {
  static std::vector<float> zeros(64 * 48);
  const std::string path =
      broken_copy(no_metadata_edit, [](const auto& info, auto& writer, const auto&) {
        if (info.name != "blk.0.attn_q.weight") return false;
        writer.add_tensor("blk.0.attn_q.weight", DType::F32, {64, 48}, zeros.data());
        return true;
      });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("blk.0.attn_q.weight has shape [64, 48], expected [64, 64]"),
            std::string::npos)
      << msg;
}

TEST(ModelLoad, UnsupportedArchitecture) {
  const std::string path = broken_copy(
      [](gguf::Writer& w) { w.set("general.architecture", gguf::Value::string("mamba")); },
      [](const auto&, auto&, const auto&) { return false; });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("unsupported architecture 'mamba'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("qwen3moe"), std::string::npos) << msg;  // lists what is supported
}

TEST(ModelLoad, MissingHyperParameterNamesTheKey) {
  const std::string path = broken_copy([](gguf::Writer& w) { w.remove("llama.block_count"); },
                                       [](const auto&, auto&, const auto&) { return false; });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("llama.block_count"), std::string::npos) << msg;
}

TEST(ModelLoad, UnexpectedTensorIsNamed) {
  static std::vector<float> zeros(64);
  const std::string path =
      broken_copy(no_metadata_edit, [](const auto& info, auto& writer, const auto&) {
        if (info.name == "output_norm.weight")
          writer.add_tensor("blk.7.attn_norm.weight", DType::F32, {64}, zeros.data());
        return false;
      });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("unexpected tensor blk.7.attn_norm.weight"), std::string::npos) << msg;
}

TEST(ModelLoad, BadHeadCounts) {
  const std::string path = broken_copy(
      [](gguf::Writer& w) { w.set("llama.attention.head_count_kv", gguf::Value::u32(3)); },
      [](const auto&, auto&, const auto&) { return false; });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("llama.attention.head_count_kv"), std::string::npos) << msg;
}

}  // namespace
}  // namespace toy
