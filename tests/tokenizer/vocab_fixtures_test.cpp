// Every case of every vocabulary in ../shared/fixtures/tokenizer must match
// llama.cpp's ids (.out), tokenized with no BOS/EOS and no special parsing;
// detokenizing must give the text back wherever the tokenizer is lossless.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "support/fixtures.h"
#include "tokenizer/tokenizer.h"

namespace toy::tokenizer {
namespace {

struct VocabCase {
  std::string text;
  std::vector<int32_t> expected;
};

std::vector<VocabCase> load_cases(const std::string& vocab) {
  const std::string base = testing::fixture_path("tokenizer/ggml-vocab-" + vocab + ".gguf");
  const std::string inputs = testing::read_text(base + ".inp");
  const std::string outputs = testing::read_text(base + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t begin = 0;;) {
    const size_t end = inputs.find(separator, begin);
    if (end == std::string::npos) break;  // the file ends with a separator
    texts.push_back(inputs.substr(begin, end - begin));
    begin = end + separator.size();
  }
  std::vector<VocabCase> cases;
  std::istringstream lines(outputs);
  std::string line;
  for (const std::string& text : texts) {
    EXPECT_TRUE(static_cast<bool>(std::getline(lines, line))) << vocab << ": .out too short";
    VocabCase c{text, {}};
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.expected.push_back(id);
    cases.push_back(std::move(c));
  }
  return cases;
}

// Texts llama.cpp's own detokenizer does not give back unchanged, and why.
bool expect_lossy_roundtrip(const std::string& vocab, const std::string& text) {
  // gpt-2, falcon and starcoder have clean_up_tokenization_spaces: " ?" -> "?",
  // " 's" -> "'s", " ' " -> "'" (llama.cpp clean_spaces).
  const bool cleans = vocab == "gpt-2" || vocab == "falcon" || vocab == "starcoder";
  if (!cleans) return false;
  std::string cleaned = text;
  clean_up_spaces(cleaned);
  return cleaned != text;
}

class VocabFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabFixture, MatchesLlamaCppIds) {
  const std::string vocab = GetParam();
  auto file = gguf::File::open(testing::fixture_path("tokenizer/ggml-vocab-" + vocab + ".gguf"));
  auto tokenizer = Tokenizer::from_gguf(*file);
  const auto cases = load_cases(vocab);
  ASSERT_EQ(cases.size(), 46u);
  int passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = tokenizer->tokenize(cases[i].text);
    EXPECT_EQ(ids, cases[i].expected) << vocab << " case " << i << ": '" << cases[i].text << "'";
    passed += ids == cases[i].expected;
  }
  std::printf("%s: %d/%zu cases match llama.cpp\n", vocab.c_str(), passed, cases.size());
}

TEST_P(VocabFixture, DetokenizeRoundTrips) {
  const std::string vocab = GetParam();
  auto file = gguf::File::open(testing::fixture_path("tokenizer/ggml-vocab-" + vocab + ".gguf"));
  auto tokenizer = Tokenizer::from_gguf(*file);
  for (const VocabCase& c : load_cases(vocab)) {
    const auto ids = tokenizer->tokenize(c.text);
    // Without the clean-up rules every vocabulary here is lossless.
    DetokenizeOptions raw;
    raw.clean_spaces = false;
    EXPECT_EQ(tokenizer->detokenize(ids, raw), c.text) << vocab << ": '" << c.text << "'";
    // With llama.cpp's default clean-up, only the texts it rewrites differ.
    const std::string cleaned = tokenizer->detokenize(ids);
    if (expect_lossy_roundtrip(vocab, c.text)) {
      std::string expected = c.text;
      clean_up_spaces(expected);
      EXPECT_EQ(cleaned, expected) << vocab << ": '" << c.text << "'";
    } else {
      EXPECT_EQ(cleaned, c.text) << vocab << ": '" << c.text << "'";
    }
  }
}

// llama.cpp matches a user-defined token (GGUF token type 4) in plain text even without
// parse_special; only the ones it re-types CONTROL by their text (end-of-turn and FIM markers)
// are left to parse_special.
TEST_P(VocabFixture, UserDefinedTokensAreMatchedWithoutParseSpecial) {
  const std::string vocab = GetParam();
  auto file = gguf::File::open(testing::fixture_path("tokenizer/ggml-vocab-" + vocab + ".gguf"));
  auto tokenizer = Tokenizer::from_gguf(*file);
  const auto types = file->find("tokenizer.ggml.token_type");
  if (!types) GTEST_SKIP() << vocab << " has no token types";
  std::vector<std::string> left_to_parse_special;
  for (int32_t id = 0; id < tokenizer->n_vocab(); ++id) {
    if (types->at(static_cast<uint64_t>(id)).integer() != 4) continue;
    const std::string& text = tokenizer->vocab().token(id).text;
    const auto ids = tokenizer->tokenize("x" + text + " y");
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) left_to_parse_special.push_back(text);
  }
  const std::vector<std::string> expected =
      vocab == "deepseek-coder"
          ? std::vector<std::string>{"<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>"}
          : std::vector<std::string>{};
  EXPECT_EQ(left_to_parse_special, expected) << vocab;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VocabFixture,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "deepseek-coder",
                                           "falcon", "starcoder"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace toy::tokenizer
