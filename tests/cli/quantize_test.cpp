// `toy quantize` end to end: dequantizing the fixtures to F32 reproduces llama.cpp's
// values bit for bit, quantizing the F32 base reproduces llama.cpp's files where the
// reference quantizer is deterministic, tensor selection (weights, norms, router,
// expert tensors, rows that do not fit the block and llama.cpp's fallback types), the
// K-quant mixtures (q4_k_m tensor types equal llama.cpp's file) and the error cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/fixtures.h"

namespace toy {
namespace {

namespace fs = std::filesystem;

std::string model(const std::string& name) {
  return testing::fixture_path("models/" + name + ".gguf");
}

// Runs `toy quantize ARGS`; returns the exit status, output in *output.
int quantize(const std::string& args, std::string* output) {
  return testing::run_command(testing::binary_dir() + "/toy quantize " + args, output);
}

// Converts `in` to `type` into a fresh temporary file and opens it.
std::shared_ptr<gguf::File> convert(const std::string& in, const std::string& type,
                                    std::string* output = nullptr, const std::string& flags = "") {
  const std::string out = testing::temp_path("-" + type + ".gguf");
  std::string log;
  const int status = quantize(flags + " " + in + " " + out + " " + type, &log);
  if (output) *output = log;
  EXPECT_EQ(status, 0) << log;
  auto file = gguf::File::open(out);
  fs::remove(out);  // the mapping stays valid
  return file;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.data, b.data, a.bytes()) == 0;
}

class DequantizeToF32 : public ::testing::TestWithParam<std::string> {};

TEST_P(DequantizeToF32, EveryTensorHasLlamaCppsBytes) {
  const std::string name = GetParam();
  const auto expected = nlohmann::json::parse(
      testing::read_text(testing::fixture_path("models/" + name + ".dequant-sha256.json")));
  const auto out = convert(model(name), "f32");
  EXPECT_EQ(out->get_integer("general.file_type"), 0);
  ASSERT_EQ(out->tensors().size(), expected.size());
  for (const gguf::TensorInfo& info : out->tensors()) {
    EXPECT_EQ(info.type, DType::F32) << info.name;
    const Tensor t = out->tensor(info);
    EXPECT_EQ(testing::sha256_hex(t.data, t.bytes()),
              expected[std::string(info.name)].get<std::string>())
        << info.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DequantizeToF32,
                         ::testing::Values("llama-f16", "llama-bf16", "llama-q8_0", "llama-q4_0",
                                           "llama-q6_k", "llama-q4_k_m"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(Quantize, ReproducesLlamaCppFilesForDeterministicTypes) {
  // llama.cpp quantized llama-q.gguf into these; tensors of the same type must match byte for
  // byte (llama.cpp picks Q6_K for output.weight in its q4_0 file, which we skip here).
  for (const auto& [type, reference] : std::map<std::string, std::string>{
           {"q8_0", "llama-q8_0"}, {"q4_0", "llama-q4_0"}, {"bf16", "llama-bf16"}}) {
    const auto ours = convert(model("llama-q"), type);
    const auto theirs = gguf::File::open(model(reference));
    int compared = 0;
    for (const gguf::TensorInfo& info : theirs->tensors()) {
      const gguf::TensorInfo* mine = ours->find_tensor(info.name);
      ASSERT_NE(mine, nullptr) << info.name;
      if (mine->type != info.type) continue;
      EXPECT_TRUE(same_bytes(ours->tensor(*mine), theirs->tensor(info)))
          << type << " " << info.name;
      ++compared;
    }
    EXPECT_GE(compared, 15) << type;
  }
}

TEST(Quantize, ConvertsWeightMatricesAndKeepsEverythingElse) {
  const auto in = gguf::File::open(model("llama-q"));
  std::string log;
  const auto out = convert(model("llama-q"), "q4_k", &log, "-v");
  // Metadata: every input key survives with its value; file type and version updated.
  for (size_t i = 0; i < in->metadata_count(); ++i) {
    const gguf::ValueRef value = in->metadata(i);
    const auto copied = out->find(value.key());
    ASSERT_TRUE(copied.has_value()) << value.key();
    if (value.key() != "general.file_type") {
      EXPECT_TRUE(copied->to_value() == value.to_value()) << value.key();
    }
  }
  EXPECT_EQ(out->get_integer("general.file_type"), 14);  // LLAMA_FTYPE_MOSTLY_Q4_K_S
  EXPECT_EQ(out->get_integer("general.quantization_version"), 2);
  ASSERT_EQ(out->tensors().size(), in->tensors().size());
  for (size_t i = 0; i < in->tensors().size(); ++i) {
    const gguf::TensorInfo& a = in->tensors()[i];
    const gguf::TensorInfo& b = out->tensors()[i];
    EXPECT_EQ(a.name, b.name);  // same order
    EXPECT_EQ(a.ne, b.ne);
    if (a.n_dims >= 2) {
      EXPECT_EQ(b.type, DType::Q4_K) << b.name;
    } else {
      EXPECT_EQ(b.type, DType::F32) << b.name;
      EXPECT_TRUE(same_bytes(in->tensor(a), out->tensor(b))) << b.name;
    }
  }
  // Progress with -v: one line per tensor, then the size summary.
  EXPECT_NE(log.find("[   1/  21] token_embd.weight"), std::string::npos) << log;
  EXPECT_NE(log.find("[  21/  21] blk.1.ffn_down.weight"), std::string::npos) << log;
  EXPECT_NE(log.find("model size: 6.63 MiB -> 0.94 MiB"), std::string::npos) << log;
}

TEST(Quantize, EveryTypeWritesAValidFileWithItsFileType) {
  const std::map<std::string, std::pair<DType, int>> types = {
      {"f32", {DType::F32, 0}},      {"f16", {DType::F16, 1}},      {"bf16", {DType::BF16, 32}},
      {"q8_0", {DType::Q8_0, 7}},    {"q4_0", {DType::Q4_0, 2}},    {"q4_1", {DType::Q4_1, 3}},
      {"q5_0", {DType::Q5_0, 8}},    {"q5_1", {DType::Q5_1, 9}},    {"q2_k", {DType::Q2_K, 10}},
      {"q3_k", {DType::Q3_K, 11}},   {"q4_k", {DType::Q4_K, 14}},   {"q5_k", {DType::Q5_K, 16}},
      {"q6_k", {DType::Q6_K, 18}},   {"q4_k_s", {DType::Q4_K, 14}}, {"q4_k_m", {DType::Q4_K, 15}},
      {"q5_k_s", {DType::Q5_K, 16}}, {"q5_k_m", {DType::Q5_K, 17}}};
  for (const auto& [name, expected] : types) {
    const auto out = convert(model("llama-q"), name);
    EXPECT_EQ(out->get_integer("general.file_type"), expected.second) << name;
    EXPECT_EQ(out->find_tensor("blk.0.attn_q.weight")->type, expected.first) << name;
    EXPECT_EQ(out->find_tensor("blk.0.attn_norm.weight")->type, DType::F32) << name;
  }
}

TEST(Quantize, RequantizingAQuantizedFileWorks) {
  // Any dequantizable source: q4_k_m (Q4_K + Q6_K) to q8_0.
  const auto out = convert(model("llama-q4_k_m"), "q8_0");
  EXPECT_EQ(out->find_tensor("output.weight")->type, DType::Q8_0);
  EXPECT_EQ(out->find_tensor("blk.1.ffn_down.weight")->type, DType::Q8_0);
}

TEST(Quantize, ThreadCountDoesNotChangeTheOutput) {
  const auto one = convert(model("llama-q"), "q4_k", nullptr, "-t 1");
  const auto three = convert(model("llama-q"), "q4_k", nullptr, "--threads 3");
  for (const gguf::TensorInfo& info : one->tensors())
    EXPECT_TRUE(same_bytes(one->tensor(info), three->tensor(*three->find_tensor(info.name))))
        << info.name;
}

TEST(Quantize, ExpertTensorsAreConvertedPerRowAndTheRouterIsKept) {
  const auto out = convert(model("mixtral"), "q8_0");
  const gguf::TensorInfo* experts = out->find_tensor("blk.0.ffn_gate_exps.weight");
  ASSERT_NE(experts, nullptr);
  EXPECT_EQ(experts->type, DType::Q8_0);
  EXPECT_EQ(experts->n_dims, 3);
  EXPECT_EQ(out->find_tensor("blk.0.ffn_down_exps.weight")->type, DType::Q8_0);
  EXPECT_EQ(out->find_tensor("blk.0.ffn_gate_inp.weight")->type, DType::F32);
  EXPECT_EQ(out->find_tensor("blk.0.ffn_norm.weight")->type, DType::F32);
}

TEST(Quantize, RowsThatFitNoBlockKeepTheirType) {
  // stories260K: n_embd 64, ffn_down rows have 172 elements (not a multiple of 32), and no
  // row is a multiple of 256.
  std::string log;
  const auto q8 = convert(model("stories260K"), "q8_0", &log, "-v");
  EXPECT_EQ(q8->find_tensor("blk.0.ffn_down.weight")->type, DType::F32);
  EXPECT_EQ(q8->find_tensor("blk.0.ffn_up.weight")->type, DType::Q8_0);
  EXPECT_NE(log.find("note: blk.0.ffn_down.weight: row length 172 is not a multiple of q8_0's "
                     "block size 32 and no fallback fits; kept as f32"),
            std::string::npos)
      << log;
  // q4_k: the 64-wide rows take llama.cpp's fallback q5_0; 172 fits neither.
  const auto q4k = convert(model("stories260K"), "q4_k", &log, "-v");
  int fell_back = 0;
  for (const gguf::TensorInfo& info : q4k->tensors()) {
    if (info.n_dims < 2 || info.ne[0] == 172) {
      EXPECT_EQ(info.type, DType::F32) << info.name;
    } else {
      EXPECT_EQ(info.ne[0], 64) << info.name;
      EXPECT_EQ(info.type, DType::Q5_0) << info.name;
      ++fell_back;
    }
  }
  EXPECT_GE(fell_back, 10);
  EXPECT_NE(log.find("note: blk.0.attn_q.weight: row length 64 is not a multiple of q4_k's "
                     "block size 256; wanted q4_k, using fallback q5_0"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("blk.0.ffn_down.weight: row length 172 is not a multiple of q4_k's block "
                     "size 256 and no fallback fits; kept as f32"),
            std::string::npos)
      << log;
  // rope_freqs is never converted.
  const auto rope = convert(model("llama3-rope"), "f16");
  EXPECT_EQ(rope->find_tensor("rope_freqs.weight")->type, DType::F32);
  EXPECT_EQ(rope->find_tensor("blk.0.attn_q.weight")->type, DType::F16);
}

// A llama-shaped file with SmolLM2-135M's 576-wide rows (not a multiple of 256) and one
// 512-wide matrix that fits the K-quant block. Tensor values are a smooth ramp.
std::string write_576_wide_model() {
  const std::string path = testing::temp_path("-576.gguf");
  gguf::Writer writer;
  writer.set("general.architecture", gguf::Value::string("llama"));
  writer.set("llama.block_count", gguf::Value::u32(1));
  std::vector<float> values(576 * 64);  // (576, 64), also the (512, 64) prefix
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.01f * static_cast<float>(i % 97) - 0.4f;
  writer.add_tensor("blk.0.attn_q.weight", DType::F32, {576, 64}, values.data());
  writer.add_tensor("blk.0.ffn_down.weight", DType::F32, {512, 64}, values.data());
  writer.add_tensor("output.weight", DType::F32, {576, 64}, values.data());
  writer.write(path);
  return path;
}

TEST(Quantize, RowsThatDoNotFitAKQuantUseLlamaCppsFallback) {
  const std::string in = write_576_wide_model();
  // Pure K types: the 576-wide matrices take the block-32 fallback, the 512-wide one fits.
  for (const auto& [type, expected] : std::map<std::string, std::pair<DType, DType>>{
           {"q4_k", {DType::Q4_K, DType::Q5_0}},
           {"q5_k", {DType::Q5_K, DType::Q5_1}},
           {"q6_k", {DType::Q6_K, DType::Q8_0}},
           {"q3_k", {DType::Q3_K, DType::Q4_0}},  // llama.cpp: IQ4_NL, which toy lacks
           {"q2_k", {DType::Q2_K, DType::Q4_0}}}) {
    std::string log;
    const auto out = convert(in, type, &log, "-v");
    EXPECT_EQ(out->find_tensor("blk.0.attn_q.weight")->type, expected.second) << type;
    EXPECT_EQ(out->find_tensor("output.weight")->type, expected.second) << type;
    EXPECT_EQ(out->find_tensor("blk.0.ffn_down.weight")->type, expected.first) << type;
    const std::string note = "note: blk.0.attn_q.weight: row length 576 is not a multiple of " +
                             type + "'s block size 256; wanted " + type + ", using fallback " +
                             std::string(dtype_name(expected.second));
    EXPECT_NE(log.find(note), std::string::npos) << log;
  }
  // q4_k_m: output goes straight to q8_0 (llama.cpp's rule for rows that do not fit), the
  // (only, hence last) layer's ffn_down is q6_k, attn_q falls back to q5_0.
  const auto mixed = convert(in, "q4_k_m");
  EXPECT_EQ(mixed->find_tensor("output.weight")->type, DType::Q8_0);
  EXPECT_EQ(mixed->find_tensor("blk.0.ffn_down.weight")->type, DType::Q6_K);
  EXPECT_EQ(mixed->find_tensor("blk.0.attn_q.weight")->type, DType::Q5_0);
  fs::remove(in);
}

// llama.cpp's use_more_bits for 2 layers: only layer 1 (the last eighth).
TEST(Quantize, MixturesFollowLlamaCppsRules) {
  const auto in = gguf::File::open(model("llama-q"));
  ASSERT_EQ(in->get_integer("llama.block_count"), 2);
  struct Expected {
    int file_type;
    DType base, output, attn_v[2], ffn_down[2];
  };
  const std::map<std::string, Expected> mixes = {
      {"q4_k_m",
       {15, DType::Q4_K, DType::Q6_K, {DType::Q4_K, DType::Q6_K}, {DType::Q4_K, DType::Q6_K}}},
      {"q5_k_m",
       {17, DType::Q5_K, DType::Q6_K, {DType::Q5_K, DType::Q6_K}, {DType::Q5_K, DType::Q6_K}}},
      // Q4_K_S: attn_v of the first 4 layers is q5_k; ffn_down's first eighth is empty here.
      {"q4_k_s",
       {14, DType::Q4_K, DType::Q6_K, {DType::Q5_K, DType::Q5_K}, {DType::Q4_K, DType::Q4_K}}},
      {"q5_k_s",
       {16, DType::Q5_K, DType::Q6_K, {DType::Q5_K, DType::Q5_K}, {DType::Q5_K, DType::Q5_K}}},
  };
  for (const auto& [type, e] : mixes) {
    const auto out = convert(model("llama-q"), type);
    EXPECT_EQ(out->get_integer("general.file_type"), e.file_type) << type;
    for (const gguf::TensorInfo& info : out->tensors()) {
      const std::string name(info.name);
      DType expected = info.n_dims < 2 ? DType::F32 : e.base;
      if (name == "output.weight") expected = e.output;
      for (int layer = 0; layer < 2; ++layer) {
        const std::string blk = "blk." + std::to_string(layer) + ".";
        if (name == blk + "attn_v.weight") expected = e.attn_v[layer];
        if (name == blk + "ffn_down.weight") expected = e.ffn_down[layer];
      }
      EXPECT_EQ(info.type, expected) << type << " " << name;
    }
  }
}

TEST(Quantize, Q4KMHasTheTensorTypesOfLlamaCppsFile) {
  const auto ours = convert(model("llama-q"), "q4_k_m");
  const auto theirs = gguf::File::open(model("llama-q4_k_m"));
  EXPECT_EQ(ours->get_integer("general.file_type"), theirs->get_integer("general.file_type"));
  ASSERT_EQ(ours->tensors().size(), theirs->tensors().size());
  for (const gguf::TensorInfo& info : theirs->tensors()) {
    const gguf::TensorInfo* mine = ours->find_tensor(info.name);
    ASSERT_NE(mine, nullptr) << info.name;
    EXPECT_EQ(dtype_name(mine->type), dtype_name(info.type)) << info.name;
  }
}

// Every error: exit status 1, a message naming the problem, and no output file.
void expect_failure(const std::string& args, const std::string& out, const std::string& message) {
  std::string log;
  EXPECT_EQ(quantize(args, &log), 1) << args << "\n" << log;
  EXPECT_NE(log.find(message), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out)) << out;
}

TEST(Quantize, BadInputFailsCleanly) {
  const std::string out = testing::temp_path(".gguf");
  expect_failure("/nonexistent/model.gguf " + out + " q4_k", out, "/nonexistent/model.gguf");
  expect_failure(model("llama-q") + " " + out + " q4_k_l", out,
                 "unknown TYPE 'q4_k_l'; valid types: f32, f16, bf16, q8_0, q4_0");
  expect_failure(model("llama-q") + " " + out + " q7_k", out,
                 "q6_k, q4_k_s, q4_k_m, q5_k_s, q5_k_m");
  expect_failure(model("llama-q") + " /nonexistent-dir/out.gguf q8_0", "/nonexistent-dir/out.gguf",
                 "directory /nonexistent-dir does not exist");
  expect_failure(model("llama-q") + " " + out, out, "type is required");
  expect_failure(model("llama-q") + " " + out + " q8_0 -t 0", out, "threads");
  // A file that is not GGUF.
  const std::string text = testing::temp_path(".txt");
  ASSERT_EQ(testing::run_command("echo hello > " + text, nullptr), 0);
  expect_failure(text + " " + out + " q8_0", out, text);
  fs::remove(text);
}

TEST(Quantize, QuietOnPipesUnlessVerbose) {
  // Without -v: no line per tensor (stderr is a pipe here), one summary of the notes.
  std::string log;
  convert(model("stories260K"), "q4_k", &log);
  EXPECT_EQ(log.find("[   1/"), std::string::npos) << log;
  EXPECT_EQ(log.find("row length"), std::string::npos) << log;
  EXPECT_NE(log.find("note: 36 tensors did not get q4_k"), std::string::npos) << log;
  EXPECT_LE(std::count(log.begin(), log.end(), '\n'), 5) << log;
}

TEST(Quantize, HelpListsTheTypesAndTheFallback) {
  std::string log;
  EXPECT_EQ(quantize("--help", &log), 0) << log;
  EXPECT_NE(log.find("q4_k_m"), std::string::npos) << log;
  EXPECT_NE(log.find("q5_k_m"), std::string::npos) << log;
  EXPECT_NE(log.find("q5_0 (q4_k)"), std::string::npos) << log;
}

TEST(Quantize, RefusesToOverwriteItsInput) {
  const std::string copy = testing::temp_path(".gguf");
  fs::copy_file(model("llama-q"), copy);
  const auto before = testing::read_bytes(copy);
  std::string log;
  EXPECT_EQ(quantize(copy + " " + copy + " q8_0", &log), 1);
  EXPECT_NE(log.find("is the same file as input"), std::string::npos) << log;
  EXPECT_EQ(testing::read_bytes(copy), before);
  // Also through a different spelling of the same path.
  const fs::path p(copy);
  const std::string other = (p.parent_path() / "." / p.filename()).string();
  EXPECT_EQ(quantize(copy + " " + other + " q8_0", &log), 1);
  EXPECT_EQ(testing::read_bytes(copy), before);
  fs::remove(copy);
}

}  // namespace
}  // namespace toy
