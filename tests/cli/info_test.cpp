// `toy info` end to end: runs the built binary on fixtures and on broken files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/fixtures.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::run_command;

std::string toy_info(const std::string& args, int* status) {
  std::string output;
  *status = run_command(binary_dir() + "/toy info " + args, &output);
  return output;
}

TEST(ToyInfo, PrintsVersionMetadataTensorsAndTotals) {
  int status = -1;
  std::string out = toy_info(fixture_path("models/llama.gguf"), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("GGUF version 3"), std::string::npos) << out;
  EXPECT_NE(out.find("general.architecture"), std::string::npos) << out;
  EXPECT_NE(out.find("\"llama\""), std::string::npos) << out;
  EXPECT_NE(out.find("llama.attention.layer_norm_rms_epsilon  f32"), std::string::npos) << out;
  EXPECT_NE(out.find("tensors: 21"), std::string::npos) << out;
  EXPECT_NE(out.find("token_embd.weight"), std::string::npos) << out;
  EXPECT_NE(out.find("[64, 128]"), std::string::npos) << out;
  EXPECT_NE(out.find("115008 parameters, 460032 bytes of tensor data, 32.0000 bits per weight"),
            std::string::npos)
      << out;
}

TEST(ToyInfo, AbbreviatesLongArrays) {
  int status = -1;
  std::string out = toy_info(fixture_path("tokenizer/ggml-vocab-gpt-2.gguf"), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("tokenizer.ggml.tokens              array[string]  [\"!\", \"\\\"\", \"#\", "
                     "\"$\", \"%\", ... (50257 elements)]"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("[1, 1, 1, 1, 1, ... (50257 elements)]"), std::string::npos) << out;
  EXPECT_NE(out.find("tensors: 0"), std::string::npos) << out;
}

TEST(ToyInfo, QuantizedTotals) {
  int status = -1;
  std::string out = toy_info(fixture_path("models/llama-q4_k_m.gguf"), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("q4_k"), std::string::npos) << out;
  EXPECT_NE(out.find("q6_k"), std::string::npos) << out;
  EXPECT_NE(out.find("1737984 parameters, 1062272 bytes of tensor data, 4.8897 bits per weight"),
            std::string::npos)
      << out;
}

TEST(ToyInfo, JsonIsOneObject) {
  int status = -1;
  std::string out = toy_info(fixture_path("models/llama.gguf") + " --json 2>/dev/null", &status);
  ASSERT_EQ(status, 0) << out;
  nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["alignment"], 32);
  EXPECT_EQ(j["metadata"]["general.architecture"]["type"], "string");
  EXPECT_EQ(j["metadata"]["general.architecture"]["value"], "llama");
  EXPECT_EQ(j["metadata"]["llama.attention.layer_norm_rms_epsilon"]["value"], 1e-5);
  ASSERT_EQ(j["tensors"].size(), 21u);
  EXPECT_EQ(j["tensors"][0]["name"], "token_embd.weight");
  EXPECT_EQ(j["totals"]["parameters"], 115008);
  EXPECT_EQ(j["totals"]["bytes"], 460032);
  EXPECT_EQ(j["totals"]["bits_per_weight"], 32.0);
  uint64_t bytes = 0;
  for (const auto& t : j["tensors"]) bytes += t["bytes"].get<uint64_t>();
  EXPECT_EQ(bytes, 460032u);
}

TEST(ToyInfo, JsonArraysAreAbbreviatedUnlessFull) {
  int status = -1;
  std::string path = fixture_path("tokenizer/ggml-vocab-llama-spm.gguf");
  nlohmann::json j = nlohmann::json::parse(toy_info(path + " --json 2>/dev/null", &status));
  ASSERT_EQ(status, 0);
  const auto& tokens = j["metadata"]["tokenizer.ggml.tokens"];
  EXPECT_EQ(tokens["type"], "array");
  EXPECT_EQ(tokens["element_type"], "string");
  EXPECT_EQ(tokens["length"], 32000);
  EXPECT_EQ(tokens["value"].size(), 16u);
  EXPECT_EQ(tokens["truncated"], true);
  EXPECT_EQ(tokens["value"][0], "<unk>");
  j = nlohmann::json::parse(toy_info(path + " --json --full 2>/dev/null", &status));
  ASSERT_EQ(status, 0);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["value"].size(), 32000u);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["truncated"], false);
}

TEST(ToyInfo, CorruptFilePrintsTheErrorAndExits1) {
  std::vector<uint8_t> bytes = toy::testing::read_bytes(fixture_path("models/llama.gguf"));
  bytes.resize(bytes.size() - 100);  // cut into the last tensor's data
  std::string path = toy::testing::temp_path(".gguf");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  int status = -1;
  std::string out = toy_info(path, &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("toy info: error: " + path + ": byte offset"), std::string::npos) << out;
  EXPECT_NE(out.find("blk.1.ffn_down.weight"), std::string::npos) << out;
  EXPECT_NE(out.find("past the end of the file"), std::string::npos) << out;
  out = toy_info(path + " --json", &status);
  EXPECT_EQ(status, 1) << out;
  std::filesystem::remove(path);
}

TEST(ToyInfo, MissingAndNonGgufFilesExit1) {
  int status = -1;
  std::string out = toy_info(toy::testing::temp_path("-absent.gguf"), &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("cannot open: No such file or directory"), std::string::npos) << out;
  out = toy_info(fixture_path("models/llama.ref.json"), &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("not a GGUF file"), std::string::npos) << out;
  out = toy_info(fixture_path("models"), &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("is a directory"), std::string::npos) << out;
}

TEST(ToyInfo, UsageErrorsExitNonZero) {
  int status = -1;
  toy_info("", &status);
  EXPECT_NE(status, 0);
  toy_info("--no-such-flag x.gguf", &status);
  EXPECT_NE(status, 0);
  std::string out = toy_info("--help", &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(out.find("--json"), std::string::npos) << out;
}

}  // namespace
