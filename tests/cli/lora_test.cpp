// LoRA end to end: `toy logits/generate --lora` on the fixture adapter against llama.cpp's
// logits for it, the flags' rules (scales, several adapters, errors), and `toy merge`
// against both toy's base + adapter and llama.cpp's merged model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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
using toy::testing::temp_path;

const std::string kBase = fixture_path("models/llama.gguf");
const std::string kAdapter = fixture_path("lora/llama-lora.gguf");
const std::string kMerged = fixture_path("lora/llama-merged.gguf");

std::string token_list(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

std::vector<float> floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// Runs `toy CMD ARGS`, expecting success; returns its output.
std::string toy_ok(const std::string& args) {
  std::string output;
  const int status = run_command(binary_dir() + "/toy " + args, &output);
  EXPECT_EQ(status, 0) << "toy " << args << "\n" << output;
  return output;
}

// Runs `toy CMD ARGS`, expecting failure; returns its output.
std::string toy_fails(const std::string& args) {
  std::string output;
  const int status = run_command(binary_dir() + "/toy " + args, &output);
  EXPECT_NE(status, 0) << "toy " << args << "\n" << output;
  return output;
}

// The logits of the fixture prompt through `model` with `extra` flags.
std::vector<float> logits(const std::string& model, const std::string& extra) {
  const auto ref = toy::testing::load_reference("lora/llama-lora.ref.json");
  const std::string out = temp_path(".f32");
  toy_ok("logits -m " + model + " --tokens " + token_list(ref.tokens) + " -o " + out + " " + extra);
  auto v = floats(read_bytes(out));
  std::filesystem::remove(out);
  return v;
}

// max |a - b| / max |b|: the "relative" of the merge checks.
double relative_max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

void expect_close(const std::vector<float>& ours, const std::string& ref_json) {
  const auto ref = toy::testing::load_reference(ref_json);
  const auto c = toy::testing::compare_logits(ours, ref.logits);
  EXPECT_TRUE(c.ok()) << ref_json << ": max " << c.max_abs << " (limit " << c.max_limit << "), rms "
                      << c.rms << " (limit " << c.rms_limit << ")";
}

TEST(ToyLora, LogitsMatchLlamaCpp) {
  expect_close(logits(kBase, "--lora " + kAdapter), "lora/llama-lora.ref.json");
  expect_close(logits(kBase, "--lora " + kAdapter + " --decode -t 1"), "lora/llama-lora.ref.json");
  // llama.cpp's merged model gives the same logits in toy.
  expect_close(logits(kMerged, ""), "lora/llama-lora.ref.json");
  expect_close(logits(kMerged, ""), "lora/llama-merged.ref.json");
}

TEST(ToyLora, GreedyContinuationMatchesLlamaCpp) {
  const auto ref = toy::testing::load_reference("lora/llama-lora.ref.json");
  std::string greedy;
  for (int32_t id : ref.greedy) greedy += (greedy.empty() ? "" : " ") + std::to_string(id);
  const std::string out =
      toy_ok("generate -m " + kBase + " --lora " + kAdapter + " --tokens " +
             token_list(ref.tokens) + " -n " + std::to_string(ref.greedy.size()) +
             " --temp 0 --seed 1 --print-ids --kv-type f32 --exact -t 1");
  // stdout (the ids line) and stderr (timings) are captured together.
  EXPECT_NE(out.find(greedy + "\n"), std::string::npos) << out;
}

TEST(ToyLora, ScalesAndSeveralAdapters) {
  const auto base = logits(kBase, "");
  const auto one = logits(kBase, "--lora " + kAdapter);
  ASSERT_EQ(base.size(), one.size());
  EXPECT_GT(relative_max_diff(one, base), 1e-3) << "the adapter changes the logits";
  // Scale 0 adds exactly nothing.
  EXPECT_EQ(logits(kBase, "--lora " + kAdapter + " --lora-scale 0"), base);
  // llama.cpp's --lora-scaled FILE S is --lora FILE --lora-scale S.
  EXPECT_EQ(logits(kBase, "--lora-scaled " + kAdapter + " 0.5"),
            logits(kBase, "--lora " + kAdapter + " --lora-scale 0.5"));
  // Two adapters add their terms: the same adapter twice at 1 is the adapter at 2.
  const auto twice = logits(kBase, "--lora " + kAdapter + " --lora " + kAdapter);
  const auto doubled = logits(kBase, "--lora " + kAdapter + " --lora-scale 2");
  EXPECT_LT(relative_max_diff(twice, doubled), 1e-5);
  EXPECT_GT(relative_max_diff(doubled, one), 1e-3);
}

TEST(ToyLora, BadAdaptersAreClearErrors) {
  const std::string args = "logits --tokens 1,2 -o /dev/null -m ";
  std::string log = toy_fails(args + kBase + " --lora /nonexistent.gguf");
  EXPECT_NE(log.find("--lora /nonexistent.gguf"), std::string::npos) << log;
  // Every command that runs a model takes the flags, and checks the files before loading.
  for (const std::string command : {"generate --tokens 1", "chat", "perplexity -f -"}) {
    log = toy_fails(command + " -m " + kBase + " --lora /nonexistent.gguf < /dev/null");
    EXPECT_NE(log.find("--lora /nonexistent.gguf: cannot open"), std::string::npos) << log;
  }
  log = toy_fails(args + kBase + " --lora " + kAdapter + " --lora-scale 1 --lora-scale 2");
  EXPECT_NE(log.find("--lora-scale"), std::string::npos) << log;
  // A model given as an adapter.
  log = toy_fails(args + kBase + " --lora " + kMerged);
  EXPECT_NE(log.find("expected 'adapter'"), std::string::npos) << log;
  // An adapter for another architecture.
  log = toy_fails(args + fixture_path("models/qwen2.gguf") + " --lora " + kAdapter);
  EXPECT_NE(log.find("architecture 'llama'"), std::string::npos) << log;
  // A base without the adapted tensors (one layer fewer, fewer rows) names the tensor.
  log = toy_fails(args + fixture_path("models/stories260K.gguf") + " --lora " + kAdapter);
  EXPECT_NE(log.find("blk."), std::string::npos) << log;
  EXPECT_NE(log.find("lora"), std::string::npos) << log;
}

TEST(ToyMerge, MergedModelEqualsBasePlusAdapter) {
  const std::string merged = temp_path(".gguf");
  toy_ok("merge -m " + kBase + " --lora " + kAdapter + " -o " + merged);
  const auto ours = logits(merged, "");
  EXPECT_LT(relative_max_diff(ours, logits(kBase, "--lora " + kAdapter)), 1e-4);
  expect_close(ours, "lora/llama-merged.ref.json");
  // A scale is merged as it runs.
  toy_ok("merge -m " + kBase + " --lora-scaled " + kAdapter + " 0.5 -o " + merged);
  EXPECT_LT(relative_max_diff(logits(merged, ""),
                              logits(kBase, "--lora " + kAdapter + " --lora-scale 0.5")),
            1e-4);
  std::filesystem::remove(merged);
}

TEST(ToyMerge, OutTypeAndQuantizedBase) {
  const std::string merged = temp_path(".gguf");
  // F16 merged matrices: a 16-bit rounding of W', close to the F32 merge.
  toy_ok("merge -m " + kBase + " --lora " + kAdapter + " --out-type f16 -o " + merged);
  const std::string info = toy_ok("info " + merged);
  EXPECT_NE(info.find("f16"), std::string::npos) << info;
  EXPECT_LT(relative_max_diff(logits(merged, ""), logits(kBase, "--lora " + kAdapter)), 2e-3);
  // A Q8_0 base (the fixture base quantized): adapters run on it in place, and a merge
  // requantizes the adapted matrices to Q8_0 and copies the rest. The bounds are Q8_0's own
  // rounding of a 64-wide model (measured 0.020 and 0.016), not the adapter's.
  const std::string q8 = temp_path(".gguf");
  toy_ok("quantize " + kBase + " " + q8 + " q8_0");
  const auto q8_lora = logits(q8, "--exact --lora " + kAdapter);
  EXPECT_LT(relative_max_diff(q8_lora, logits(kBase, "--lora " + kAdapter)), 5e-2);
  toy_ok("merge -m " + q8 + " --lora " + kAdapter + " -o " + merged);
  EXPECT_NE(toy_ok("info " + merged).find("q8_0"), std::string::npos);
  EXPECT_LT(relative_max_diff(logits(merged, "--exact"), q8_lora), 5e-2);
  std::filesystem::remove(merged);
  std::filesystem::remove(q8);
}

TEST(ToyMerge, UsageErrors) {
  std::string log = toy_fails("merge -m " + kBase + " -o /tmp/x.gguf");
  EXPECT_NE(log.find("--lora"), std::string::npos) << log;
  log = toy_fails("merge -m " + kBase + " --lora " + kAdapter + " --out-type q9 -o /tmp/x.gguf");
  EXPECT_NE(log.find("--out-type"), std::string::npos) << log;
  // The output may not overwrite an input.
  log = toy_fails("merge -m " + kBase + " --lora " + kAdapter + " -o " + kAdapter);
  EXPECT_NE(log.find("same file"), std::string::npos) << log;
}

}  // namespace
