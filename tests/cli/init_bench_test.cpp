// `toy init` (random models in llama.cpp's GGUF layout) and `toy bench`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "gguf/reader.h"
#include "support/fixtures.h"

namespace toy {
namespace {

using testing::binary_dir;
using testing::run_command;
using testing::temp_path;

std::string toy_command(const std::string& args) {
  return "'" + binary_dir() + "/toy' " + args + " 2>&1";
}

const char* kTinyArgs = "--n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 96 --vocab 300";

std::string init_model(const std::string& extra, const std::string& suffix) {
  const std::string path = temp_path(suffix);
  std::string output;
  const int status = run_command(
      toy_command("init " + std::string(kTinyArgs) + " " + extra + " -o " + path), &output);
  EXPECT_EQ(status, 0) << output;
  return path;
}

TEST(Init, WritesLlamaLayoutWithMetadataAndShapes) {
  const std::string path = init_model("--tied --seed 7 --ctx 512 --rope-base 100000", ".gguf");
  auto file = gguf::File::open(path);
  EXPECT_EQ(file->get("general.architecture").string(), "llama");
  EXPECT_EQ(file->get_u32("llama.embedding_length"), 64u);
  EXPECT_EQ(file->get_u32("llama.block_count"), 2u);
  EXPECT_EQ(file->get_u32("llama.feed_forward_length"), 96u);
  EXPECT_EQ(file->get_u32("llama.attention.head_count"), 4u);
  EXPECT_EQ(file->get_u32("llama.attention.head_count_kv"), 2u);
  EXPECT_EQ(file->get_u32("llama.context_length"), 512u);
  EXPECT_EQ(file->get_u32("llama.rope.dimension_count"), 16u);
  EXPECT_EQ(file->get_u32("llama.vocab_size"), 300u);
  EXPECT_EQ(file->get_u32("general.file_type"), 0u);
  EXPECT_FLOAT_EQ(file->get_f32("llama.rope.freq_base"), 100000.0f);
  EXPECT_FLOAT_EQ(file->get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(file->get("tokenizer.ggml.model").string(), "none");

  EXPECT_EQ(file->find_tensor("output.weight"), nullptr) << "tied model has no output.weight";
  const gguf::TensorInfo* embd = file->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->ne[0], 64);
  EXPECT_EQ(embd->ne[1], 300);
  const gguf::TensorInfo* k = file->find_tensor("blk.1.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->ne[0], 64);
  EXPECT_EQ(k->ne[1], 32);  // n_head_kv * head_dim
  const gguf::TensorInfo* down = file->find_tensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->ne[0], 96);
  EXPECT_EQ(down->ne[1], 64);
  EXPECT_EQ(file->tensors().size(), 1u + 1u + 2u * 9u);

  // Norms are 1; matrices have std ~ 1/sqrt(fan_in); the embedding 0.15.
  const Tensor norm = file->tensor("blk.0.ffn_norm.weight");
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(norm.ptr<const float>()[i], 1.0f);
  auto stddev = [&](const char* name) {
    const Tensor t = file->tensor(name);
    double sum = 0.0, sum2 = 0.0;
    const float* v = t.ptr<const float>();
    for (int64_t i = 0; i < t.numel(); ++i) sum += v[i], sum2 += double(v[i]) * v[i];
    const double mean = sum / t.numel();
    return std::sqrt(sum2 / t.numel() - mean * mean);
  };
  EXPECT_NEAR(stddev("blk.0.ffn_down.weight"), 1.0 / std::sqrt(96.0), 0.01);
  EXPECT_NEAR(stddev("blk.1.attn_q.weight"), 1.0 / 8.0, 0.01);
  EXPECT_NEAR(stddev("token_embd.weight"), 0.15, 0.01);
  std::remove(path.c_str());
}

TEST(Init, UntiedModelHasOutputAndSeedsAreDeterministic) {
  const std::string a = init_model("--seed 3", ".gguf");
  const std::string b = init_model("--seed 3 -t 1", ".gguf");
  const std::string c = init_model("--seed 4", ".gguf");
  const auto bytes_a = testing::read_bytes(a), bytes_b = testing::read_bytes(b);
  const auto bytes_c = testing::read_bytes(c);
  EXPECT_EQ(testing::sha256_hex(bytes_a.data(), bytes_a.size()),
            testing::sha256_hex(bytes_b.data(), bytes_b.size()))
      << "same seed, different thread count";
  EXPECT_NE(testing::sha256_hex(bytes_a.data(), bytes_a.size()),
            testing::sha256_hex(bytes_c.data(), bytes_c.size()));
  auto file = gguf::File::open(a);
  const gguf::TensorInfo* out = file->find_tensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->ne[0], 64);
  EXPECT_EQ(out->ne[1], 300);
  for (const auto& p : {a, b, c}) std::remove(p.c_str());
}

TEST(Init, RejectsInconsistentShapesWithClearErrors) {
  const std::string path = temp_path(".gguf");
  const struct {
    std::string args, message;
  } cases[] = {
      {"--n-embd 60 --n-layer 1 --n-head 7 --n-ff 8 --vocab 10", "multiple of --n-head"},
      {"--n-embd 64 --n-layer 1 --n-head 4 --n-head-kv 3 --n-ff 8 --vocab 10",
       "multiple of --n-head-kv"},
      {"--n-embd 64 --n-layer 0 --n-head 4 --n-ff 8 --vocab 10",
       "--n-layer: must be in [1, inf), got 0"},
      {"--n-embd 64 --n-layer 1 --n-head 4 --n-ff 8 --vocab -5",
       "--vocab: must be in [1, inf), got -5"},
      {"--arch gpt2 --n-embd 64 --n-layer 1 --n-head 4 --n-ff 8 --vocab 10", "not supported"},
  };
  for (const auto& c : cases) {
    std::string output;
    EXPECT_NE(run_command(toy_command("init " + c.args + " -o " + path), &output), 0) << c.args;
    EXPECT_NE(output.find(c.message), std::string::npos) << c.args << "\n" << output;
  }
}

TEST(Bench, ReportsSpeedsAndPeakMemoryAsJsonAndTable) {
  const std::string model = init_model("--tied", ".gguf");
  std::string output;
  ASSERT_EQ(run_command(toy_command("bench -m " + model + " -p 16 -n 4 -r 1 -t 2 --json"), &output),
            0)
      << output;
  const auto j = nlohmann::json::parse(output);
  EXPECT_EQ(j["type"], "F32");
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["pp"], 16);
  EXPECT_EQ(j["tg"], 4);
  EXPECT_GT(j["pp_tps"].get<double>(), 0.0);
  EXPECT_GT(j["tg_tps"].get<double>(), 0.0);
  EXPECT_GT(j["peak_rss_mb"].get<double>(), 0.0);
  // Weights are mapped, not copied: peak RSS stays within file + KV cache (tiny here) + 64 MB.
  EXPECT_LE(j["peak_rss_mb"].get<double>(), j["file_mb"].get<double>() + 64.0);

  ASSERT_EQ(
      run_command(toy_command("bench -m " + model + " -p 8 -n 2 -r 1 --kv-type f32"), &output), 0)
      << output;
  EXPECT_NE(output.find(" pp8 |"), std::string::npos) << output;
  EXPECT_NE(output.find(" tg2 |"), std::string::npos) << output;

  EXPECT_NE(run_command(toy_command("bench -m " + model + " --kv-type q4_k"), &output), 0);
  EXPECT_NE(output.find("--kv-type"), std::string::npos) << output;
  EXPECT_NE(run_command(toy_command("bench -m /nonexistent/model.gguf"), &output), 0);
  EXPECT_NE(output.find("/nonexistent/model.gguf"), std::string::npos) << output;
  std::remove(model.c_str());
}

}  // namespace
}  // namespace toy
