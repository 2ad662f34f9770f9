// toy tokenize / toy detokenize end to end: every fixture vocabulary's test
// strings through one `toy tokenize --jsonl` process must give llama.cpp's ids.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/fixtures.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::run_command;
using toy::testing::temp_path;

std::string vocab_path(const std::string& name) {
  return fixture_path("tokenizer/ggml-vocab-" + name + ".gguf");
}

std::string toy_binary() {
  return binary_dir() + "/toy";
}

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class TokenizeJsonl : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizeJsonl, MatchesLlamaCppIds) {
  const std::string base = vocab_path(GetParam());
  const std::string inputs = toy::testing::read_text(base + ".inp");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t begin = 0, end; (end = inputs.find(separator, begin)) != std::string::npos;
       begin = end + separator.size())
    texts.push_back(inputs.substr(begin, end - begin));
  const std::vector<std::string> expected = split_lines(toy::testing::read_text(base + ".out"));
  ASSERT_EQ(texts.size(), expected.size());

  const std::string jsonl = temp_path(".jsonl");
  {
    std::ofstream out(jsonl, std::ios::binary);
    for (const std::string& text : texts) out << nlohmann::json{{"text", text}}.dump() << "\n";
  }
  std::string output;
  ASSERT_EQ(
      run_command(toy_binary() + " tokenize -m " + quote(base) + " --jsonl < " + jsonl, &output), 0)
      << output;
  const std::vector<std::string> lines = split_lines(output);
  ASSERT_EQ(lines.size(), texts.size()) << output;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = nlohmann::json::parse(lines[i]).at("ids").get<std::vector<int>>();
    std::string joined;
    for (size_t k = 0; k < ids.size(); ++k) joined += (k ? " " : "") + std::to_string(ids[k]);
    // .out lines have a leading space before each id in llama.cpp's format.
    std::string want = expected[i];
    while (!want.empty() && want.front() == ' ') want.erase(0, 1);
    EXPECT_EQ(joined, want) << GetParam() << " case " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizeJsonl,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "deepseek-coder",
                                           "falcon", "starcoder"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

TEST(TokenizeCli, TextFlagsAndDetokenize) {
  std::string output;
  const std::string spm = quote(vocab_path("llama-spm"));
  ASSERT_EQ(run_command(toy_binary() + " tokenize -m " + spm + " --text 'Hello world'", &output),
            0);
  EXPECT_EQ(output, "15043 3186\n");
  ASSERT_EQ(run_command(toy_binary() + " tokenize -m " + spm +
                            " --text '<s>Hello' --add-special --parse-special",
                        &output),
            0);
  EXPECT_EQ(output, "1 1 15043\n");
  ASSERT_EQ(run_command(toy_binary() + " tokenize -m " + spm + " --text 'Hello' --pieces", &output),
            0);
  EXPECT_EQ(output, " 15043 -> ' Hello'\n");
  ASSERT_EQ(run_command(toy_binary() + " detokenize -m " + spm + " --ids 15043,3186", &output), 0);
  EXPECT_EQ(output, "Hello world");
  ASSERT_EQ(
      run_command(toy_binary() + " detokenize -m " + spm + " --ids 1,15043 --no-special", &output),
      0);
  EXPECT_EQ(output, " Hello");  // as llama.cpp: a leading BOS keeps the space
}

TEST(TokenizeCli, UserDefinedTokenIsMatchedWithoutParseSpecial) {
  // phi-3's "</s>" is a user-defined token (type 4): llama.cpp matches it in plain text, while
  // "<s>" (control) is split into pieces unless --parse-special.
  std::string output;
  const std::string phi3 = quote(vocab_path("phi-3"));
  ASSERT_EQ(run_command(toy_binary() + " tokenize -m " + phi3 + " --text '<s> not special </s>'",
                        &output),
            0);
  EXPECT_EQ(output, "529 29879 29958 451 4266 29871 2\n");
}

TEST(TokenizeCli, FileInput) {
  const std::string path = temp_path(".txt");
  {
    std::ofstream out(path, std::ios::binary);
    out << "Hello world";
  }
  std::string output;
  ASSERT_EQ(
      run_command(toy_binary() + " tokenize -m " + quote(vocab_path("gpt-2")) + " --file " + path,
                  &output),
      0);
  EXPECT_EQ(output, "15496 995\n");
}

TEST(TokenizeCli, ErrorsAreClear) {
  std::string output;
  const std::string gpt2 = quote(vocab_path("gpt-2"));
  const std::string jsonl = temp_path(".jsonl");
  {
    std::ofstream out(jsonl, std::ios::binary);
    out << "{\"text\": \"a\"}\n{\"text\": \"b\"\nnot json\n";
  }
  EXPECT_EQ(run_command(toy_binary() + " tokenize -m " + gpt2 + " --jsonl < " + jsonl, &output), 1);
  EXPECT_NE(output.find("{\"ids\":[64]}"), std::string::npos) << output;
  EXPECT_NE(output.find("line 2"), std::string::npos) << output;

  EXPECT_EQ(run_command(toy_binary() + " detokenize -m " + gpt2 + " --ids 1,99999999", &output), 1);
  EXPECT_NE(output.find("outside the vocabulary"), std::string::npos) << output;
  EXPECT_EQ(run_command(toy_binary() + " detokenize -m " + gpt2 + " --ids 1,x", &output), 1);
  EXPECT_NE(output.find("'x'"), std::string::npos) << output;
  EXPECT_NE(run_command(toy_binary() + " tokenize -m " + gpt2, &output), 0);
  EXPECT_NE(run_command(toy_binary() + " tokenize -m " + gpt2 + " --text a --jsonl", &output), 0);
  EXPECT_EQ(run_command(toy_binary() + " tokenize -m " + quote(fixture_path("models/llama.gguf")) +
                            " --text hi",
                        &output),
            1);
  EXPECT_NE(output.find("no vocabulary"), std::string::npos) << output;
  EXPECT_EQ(run_command(toy_binary() + " tokenize -m /nonexistent.gguf --text hi", &output), 1);
}

}  // namespace
