// Random texts built from awkward pieces (partial UTF-8, special-token text,
// whitespace runs, the "▁" marker itself) never make a tokenizer throw or emit an
// id outside the vocabulary, and valid text comes back from detokenize.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "support/fixtures.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace toy::tokenizer {
namespace {

const std::vector<std::string> kPieces = {"a",        "Z",        " ",
                                          "  ",       "\n",       "\t",
                                          "'s",       "'RE",      "é",
                                          "ü",        "世界",     "🦙",
                                          "1",        "23",       "4567",
                                          "!",        ".",        "?",
                                          "<s>",      "</s>",     "<|endoftext|>",
                                          "<|end|>",  "\xff",     "\xe2\x82",
                                          "\xc0\x80", "\xf0\x9f", "\xe2\x96\x81",
                                          "\r\n",     "\xc2\xa0", "\xe1\xa0\x8e"};

std::string random_text(std::mt19937& rng) {
  std::uniform_int_distribution<int> count(0, 24);
  std::uniform_int_distribution<size_t> pick(0, kPieces.size() - 1);
  std::string text;
  for (int n = count(rng); n > 0; --n) text += kPieces[pick(rng)];
  return text;
}

class Robustness : public ::testing::TestWithParam<std::string> {};

TEST_P(Robustness, RandomTexts) {
  auto file =
      gguf::File::open(testing::fixture_path("tokenizer/ggml-vocab-" + GetParam() + ".gguf"));
  auto tok = Tokenizer::from_gguf(*file);
  std::mt19937 rng(1234);
  DetokenizeOptions raw;
  raw.clean_spaces = false;
  for (int i = 0; i < 400; ++i) {
    const std::string text = random_text(rng);
    for (bool parse_special : {false, true}) {
      std::vector<int32_t> ids;
      ASSERT_NO_THROW(
          ids = tok->tokenize(text, {.add_special = true, .parse_special = parse_special}))
          << text;
      for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->n_vocab()) << id;
      // Streaming never hands out half a character of valid text.
      StreamingDetokenizer stream(*tok);
      for (int32_t id : ids) (void)stream.push(id);
      (void)stream.finish();
    }
    // Lossless for valid UTF-8 without special-token text or a literal "▁"
    // (which SPM reads back as a space).
    const bool comparable = is_valid_utf8(text) && text.find('<') == std::string::npos &&
                            text.find("\xe2\x96\x81") == std::string::npos;
    if (comparable) EXPECT_EQ(tok->detokenize(tok->tokenize(text), raw), text) << text;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Robustness,
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
