// `toy generate` end to end: greedy ids against the fixtures' llama.cpp
// continuations, seeded sampling, and text generation with a real vocabulary.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/copy.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/fixtures.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::run_command;

// stdout only (run_command merges stderr, where the speed report goes, into the output).
std::string toy_generate(const std::string& args, int* status) {
  std::string output;
  *status = run_command("{ " + binary_dir() + "/toy generate " + args + " 2>/dev/null; }", &output);
  return output;
}

// The first line of the output: the ids printed by --print-ids.
std::string first_line(const std::string& output) {
  return output.substr(0, output.find('\n') + 1);
}

std::string toy_generate_with_stderr(const std::string& args, int* status) {
  std::string output;
  *status = run_command(binary_dir() + "/toy generate " + args, &output);
  return output;
}

std::string joined(const std::vector<int>& ids, const char* sep) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? sep : "") + std::to_string(ids[i]);
  return s;
}

nlohmann::json ref_json(const std::string& name) {
  return nlohmann::json::parse(
      toy::testing::read_text(fixture_path("models/" + name + ".ref.json")));
}

TEST(ToyGenerate, GreedyIdsMatchStoriesFromBos) {
  const auto ref = ref_json("stories260K-bos");
  const std::vector<int> greedy = ref.at("greedy");
  int status = -1;
  // Exact arithmetic with the reference's f32 cache: all 64 tokens. (The fast kernels sum in
  // another order, which flips a near-tie after 37 tokens.)
  const std::string model = "-m " + fixture_path("models/stories260K.gguf");
  const std::string out = toy_generate(
      model + " --tokens 1 -n 64 --temp 0 --print-ids --kv-type f32 --exact -t 1", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(first_line(out), joined(greedy, " ") + "\n");
  // Defaults (fast kernels, f16 cache): the first tokens still agree.
  const std::string fast =
      toy_generate(model + " --tokens 1 -n 8 --temp 0 --print-ids -t 1", &status);
  ASSERT_EQ(status, 0) << fast;
  const std::vector<int> first8(greedy.begin(), greedy.begin() + 8);
  EXPECT_EQ(first_line(fast), joined(first8, " ") + "\n");
}

// A full context shifts (keeps the newest half and goes on) unless --no-context-shift.
TEST(ToyGenerate, ContextShiftKeepsGoingUnlessDisabled) {
  int status = -1;
  const std::string args = "-m " + fixture_path("models/stories260K.gguf") +
                           " --tokens 1,2,3 -c 8 -n 20 --temp 0 --print-ids -t 1";
  std::istringstream shifted(first_line(toy_generate(args, &status)));
  ASSERT_EQ(status, 0);
  int id, count = 0;
  while (shifted >> id) ++count;
  EXPECT_EQ(count, 20);
  std::istringstream stopped(first_line(toy_generate(args + " --no-context-shift", &status)));
  ASSERT_EQ(status, 0);
  count = 0;
  while (stopped >> id) ++count;
  EXPECT_EQ(count, 8 - 3 + 1);  // the last sampled token needs no cache slot
}

TEST(ToyGenerate, GreedyIdsMatchLlamaFixture) {
  const auto ref = ref_json("llama");
  const std::vector<int> tokens = ref.at("tokens"), greedy = ref.at("greedy");
  int status = -1;
  const std::string out = toy_generate("-m " + fixture_path("models/llama.gguf") + " --tokens " +
                                           joined(tokens, ",") + " -n 16 --temp 0 --print-ids -t 2",
                                       &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(first_line(out), joined(greedy, " ") + "\n");
}

TEST(ToyGenerate, SeededSamplingIsReproducible) {
  const std::string args = "-m " + fixture_path("models/llama.gguf") +
                           " --tokens 5,6,7 -n 20 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 "
                           "--print-ids -t 1 --seed ";
  int status = -1;
  const std::string a = first_line(toy_generate(args + "42", &status));
  ASSERT_EQ(status, 0) << a;
  const std::string b = first_line(toy_generate(args + "42", &status));
  const std::string c = first_line(toy_generate(args + "43", &status));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::istringstream in(a);
  int id, count = 0;
  while (in >> id) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 320);
    ++count;
  }
  EXPECT_EQ(count, 20);
}

TEST(ToyGenerate, ReportsSpeedOnStderr) {
  int status = -1;
  const std::string out = toy_generate_with_stderr(
      "-m " + fixture_path("models/llama.gguf") + " --tokens 1,2 -n 4 --temp 0 --print-ids -t 1",
      &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("prompt: 2 tokens"), std::string::npos) << out;
  EXPECT_NE(out.find("generation: 4 tokens"), std::string::npos) << out;
  EXPECT_NE(out.find("tokens/s"), std::string::npos) << out;
}

TEST(ToyGenerate, TextPromptNeedsAVocabulary) {
  int status = -1;
  const std::string out = toy_generate_with_stderr(
      "-m " + fixture_path("models/llama.gguf") + " -p hello -n 2", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("--tokens"), std::string::npos) << out;
}

// A small random llama model wearing the llama-spm vocabulary (32000 tokens):
// the tokenizer metadata of the vocab fixture, the blocks of llama-tied.gguf
// and a fresh random token embedding of the right size.
std::string model_with_vocab() {
  const auto vocab = toy::gguf::File::open(fixture_path("tokenizer/ggml-vocab-llama-spm.gguf"));
  const auto model = toy::gguf::File::open(fixture_path("models/llama-tied.gguf"));
  const int64_t n_vocab = static_cast<int64_t>(vocab->get("tokenizer.ggml.tokens").array_size());
  toy::gguf::Writer writer;
  toy::gguf::copy_metadata(*model, writer);
  for (size_t i = 0; i < vocab->metadata_count(); ++i) {
    const auto value = vocab->metadata(i);
    if (std::string(value.key()).rfind("tokenizer.", 0) == 0)
      writer.set(std::string(value.key()), value.to_value());
  }
  writer.set("llama.vocab_size", toy::gguf::Value::u32(static_cast<uint32_t>(n_vocab)));
  static std::vector<float> embedding;
  const int64_t n_embd = model->find_tensor("token_embd.weight")->ne[0];
  embedding.resize(static_cast<size_t>(n_embd * n_vocab));
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.5f);
  for (float& x : embedding) x = dist(rng);
  for (const auto& info : model->tensors()) {
    if (info.name == "token_embd.weight") {
      writer.add_tensor("token_embd.weight", toy::DType::F32, {n_embd, n_vocab}, embedding.data());
    } else {
      writer.add_tensor(std::string(info.name), info.type,
                        std::vector<int64_t>(info.ne.begin(), info.ne.begin() + info.n_dims),
                        model->tensor(info).data);
    }
  }
  const std::string path = toy::testing::temp_path(".gguf");
  writer.write(path);
  return path;
}

TEST(ToyGenerate, StreamsTextWithAVocabulary) {
  const std::string path = model_with_vocab();
  int status = -1;
  const std::string text =
      toy_generate("-m " + path + " -p \"Once upon a time\" -n 12 --temp 0 -t 1", &status);
  ASSERT_EQ(status, 0) << text;
  EXPECT_GT(text.size(), 1u) << text;
  const std::string ids = first_line(toy_generate(
      "-m " + path + " -p \"Once upon a time\" -n 12 --temp 0 --print-ids -t 1", &status));
  ASSERT_EQ(status, 0) << ids;
  std::istringstream in(ids);
  std::vector<int> generated;
  int id;
  while (in >> id) generated.push_back(id);
  EXPECT_GT(generated.size(), 0u);
  EXPECT_LE(generated.size(), 12u);
  // The text is the prompt followed by the generated tokens: the same as
  // detokenizing the prompt's ids and the generated ids in one go.
  std::string prompt_ids;
  status = run_command("{ " + binary_dir() + "/toy tokenize -m " + path +
                           " --text \"Once upon a time\" 2>/dev/null; }",
                       &prompt_ids);
  ASSERT_EQ(status, 0) << prompt_ids;
  std::istringstream prompt_in(prompt_ids);
  std::vector<int> all;
  while (prompt_in >> id) all.push_back(id);
  all.insert(all.end(), generated.begin(), generated.end());
  std::string detok;
  status = run_command("{ " + binary_dir() + "/toy detokenize -m " + path + " --ids " +
                           joined(all, ",") + " 2>/dev/null; }",
                       &detok);
  ASSERT_EQ(status, 0) << detok;
  EXPECT_EQ(text, detok + "\n");
  std::filesystem::remove(path);
}

}  // namespace
