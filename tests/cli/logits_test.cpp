// `toy logits` end to end: the fixture prompts through the built binary, in
// prefill and decode order, compared with llama.cpp's reference logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/fixtures.h"

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

struct Reference {
  std::string tokens;  // "175,132,..."
  std::vector<float> logits;
};

Reference reference(const std::string& name, bool exact) {
  const std::string stem = fixture_path("models/" + name + (exact ? ".exact" : ""));
  const auto json = nlohmann::json::parse(toy::testing::read_text(stem + ".ref.json"));
  Reference r;
  for (int id : json.at("tokens")) r.tokens += (r.tokens.empty() ? "" : ",") + std::to_string(id);
  r.logits =
      floats(read_bytes(fixture_path("models/" + json.at("logits_file").get<std::string>())));
  return r;
}

// The fixture tolerance (fixtures/README.md).
bool within_tolerance(const std::vector<float>& ours, const std::vector<float>& ref) {
  if (ours.size() != ref.size()) return false;
  double max_d = 0, sq_d = 0, max_r = 0, sq_r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(ours[i]) - ref[i];
    max_d = std::max(max_d, std::abs(d));
    sq_d += d * d;
    max_r = std::max(max_r, std::abs(double(ref[i])));
    sq_r += double(ref[i]) * ref[i];
  }
  const double n = double(ref.size());
  return max_d <= 1e-3 * std::max(1.0, max_r) &&
         std::sqrt(sq_d / n) <= 1e-4 * std::max(1.0, std::sqrt(sq_r / n));
}

std::string toy_logits(const std::string& args, int* status) {
  std::string output;
  *status = run_command(binary_dir() + "/toy logits " + args, &output);
  return output;
}

void expect_fixture(const std::string& name, const std::string& extra, bool exact_ref) {
  const Reference ref = reference(name, exact_ref);
  const std::string out = toy::testing::temp_path(".f32");
  int status = -1;
  const std::string log = toy_logits("-m " + fixture_path("models/" + name + ".gguf") +
                                         " --tokens " + ref.tokens + " -o " + out + " " + extra,
                                     &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_TRUE(within_tolerance(floats(read_bytes(out)), ref.logits)) << name << " " << extra;
  std::filesystem::remove(out);
}

TEST(ToyLogits, PrefillMatchesReference) {
  expect_fixture("llama", "", false);
  expect_fixture("gemma2", "-t 1", true);
  expect_fixture("qwen3moe", "-t 2", false);
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
