// `toy logits` end to end: the fixture prompts through the built binary, in
// prefill and decode order, compared with llama.cpp's reference logits.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "support/fixtures.h"
#include "support/model_reference.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::read_bytes;
using toy::testing::run_command;

std::vector<float> floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

std::string toy_logits(const std::string& args, int* status) {
  std::string output;
  *status = run_command(binary_dir() + "/toy logits " + args, &output);
  return output;
}

void expect_fixture(const std::string& name, const std::string& extra, bool exact_ref) {
  const auto refs = toy::testing::load_references(name);
  ASSERT_EQ(refs.size(), exact_ref ? 2u : 1u) << name;
  const toy::testing::Reference& ref = refs.back();
  std::string tokens;
  for (int32_t id : ref.tokens) tokens += (tokens.empty() ? "" : ",") + std::to_string(id);
  const std::string out = toy::testing::temp_path(".f32");
  int status = -1;
  const std::string log = toy_logits("-m " + fixture_path("models/" + name + ".gguf") +
                                         " --tokens " + tokens + " -o " + out + " " + extra,
                                     &status);
  ASSERT_EQ(status, 0) << log;
  const auto closeness = toy::testing::compare_logits(floats(read_bytes(out)), ref.logits);
  EXPECT_TRUE(closeness.ok()) << name << " " << extra << ": max " << closeness.max_abs << " (limit "
                              << closeness.max_limit << "), rms " << closeness.rms << " (limit "
                              << closeness.rms_limit << ")";
  std::filesystem::remove(out);
}

TEST(ToyLogits, PrefillMatchesReference) {
  expect_fixture("llama", "", false);
  expect_fixture("gemma2", "-t 1", true);
  expect_fixture("qwen3moe", "-t 2", false);
}

// -fa on|off|auto (llama.cpp's flag): both attention kernels meet the reference, in
// prefill and in decode (gemma2: softcap and sliding window; qwen2: GQA).
TEST(ToyLogits, BothAttentionKernelsMatchReference) {
  for (const char* fa : {"-fa on", "-fa off", "--flash-attn=auto"}) {
    expect_fixture("gemma2", std::string(fa) + " -t 2", true);
    expect_fixture("qwen2", std::string(fa) + " --decode -t 1", false);
  }
  int status = -1;
  const std::string log = toy_logits(
      "-m " + fixture_path("models/llama.gguf") + " --tokens 1,2 -o /dev/null -fa sometimes",
      &status);
  EXPECT_EQ(status, 1) << log;
  EXPECT_NE(log.find("--flash-attn"), std::string::npos) << log;
}

TEST(ToyLogits, DecodeMatchesReference) {
  expect_fixture("llama-tied", "--decode -t 1", false);
  expect_fixture("qwen2-yarn", "--decode --kv-type f32 -t 1", false);
}

TEST(ToyLogits, ExactModeOnQuantizedWeights) {
  expect_fixture("llama-q4_k_m", "--exact", true);
  expect_fixture("llama-q8_0", "--exact --decode -t 1", true);
}

TEST(ToyLogits, ContextOverflowIsAnError) {
  int status = -1;
  const std::string log = toy_logits(
      "-m " + fixture_path("models/llama.gguf") + " --tokens 1,2,3,4,5 -c 4 -o /dev/null", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("context length exceeded"), std::string::npos) << log;
}

TEST(ToyLogits, BadTokensAreErrors) {
  int status = -1;
  std::string log = toy_logits(
      "-m " + fixture_path("models/llama.gguf") + " --tokens 1,320 -o /dev/null", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("token id 320"), std::string::npos) << log;
  log =
      toy_logits("-m " + fixture_path("models/llama.gguf") + " --tokens 1,x -o /dev/null", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("'x'"), std::string::npos) << log;
  log = toy_logits(
      "-m " + fixture_path("models/llama.gguf") + " --tokens 1 --kv-type q4_0 -o /dev/null",
      &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("q4_0"), std::string::npos) << log;
}

TEST(ToyLogits, MissingModelIsAnError) {
  int status = -1;
  const std::string log = toy_logits("-m /nonexistent/model.gguf --tokens 1 -o /dev/null", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("/nonexistent/model.gguf"), std::string::npos) << log;
}

}  // namespace

namespace {

// --tap / --tap-out: one JSON line per tap, the logits unchanged; a bad point is refused
// before any file is written.
TEST(ToyLogits, TapsWriteOneJsonLinePerTap) {
  const std::string model = fixture_path("models/stories260K.gguf");
  const std::string out = toy::testing::temp_path(".f32"), taps = toy::testing::temp_path(".jsonl");
  const std::string plain = toy::testing::temp_path(".f32");
  int status = -1;
  std::string log = toy_logits("-m " + model + " --tokens 1,403,407,261 -o " + out +
                                   " --tap resid_post,blk.1.ffn_out --tap-out " + taps,
                               &status);
  ASSERT_EQ(status, 0) << log;
  log = toy_logits("-m " + model + " --tokens 1,403,407,261 -o " + plain, &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_EQ(read_bytes(out), read_bytes(plain));
  const std::string text = toy::testing::read_text(taps);
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_EQ(lines, 6u);  // resid_post of 5 layers and blk.1.ffn_out
  EXPECT_NE(text.find("\"tap\":\"blk.1.ffn_out\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"rms\":"), std::string::npos) << text;
  EXPECT_NE(text.find("\"nonfinite\":0"), std::string::npos) << text;
  std::filesystem::remove(taps);
  log = toy_logits(
      "-m " + model + " --tokens 1,2 -o " + out + " --tap ffn_middle --tap-out " + taps, &status);
  EXPECT_EQ(status, 1) << log;
  EXPECT_NE(log.find("ffn_middle"), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(taps));
  log = toy_logits(
      "-m " + model + " --tokens 1,2 -o " + out + " --tap blk.9.ffn_out --tap-out " + taps,
      &status);
  EXPECT_EQ(status, 1) << log;
  EXPECT_NE(log.find("5 layers"), std::string::npos) << log;
  std::filesystem::remove(out);
  std::filesystem::remove(plain);
}

}  // namespace
