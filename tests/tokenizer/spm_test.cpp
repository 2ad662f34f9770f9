// The SPM encoder's word-by-word path (cut at "▁word" starts and isolated
// characters, cached) must give exactly the ids of encoding whole fragments,
// which is llama.cpp's algorithm.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gguf/reader.h"
#include "support/fixtures.h"
#include "tokenizer/spm.h"
#include "tokenizer/vocab.h"

namespace toy::tokenizer {
namespace {

class SpmWordSplit : public ::testing::TestWithParam<std::string> {};

TEST_P(SpmWordSplit, EqualsWholeTextEncoding) {
  auto file =
      gguf::File::open(testing::fixture_path("tokenizer/ggml-vocab-" + GetParam() + ".gguf"));
  const Vocab vocab = Vocab::from_gguf(*file);
  SpmEncoder by_word(vocab, /*split_words=*/true);
  SpmEncoder whole(vocab, /*split_words=*/false);
  std::string text = testing::read_text(testing::fixture_path("text/tinyshakespeare.txt"));
  text.resize(150000);  // whole-text encoding is the slow reference
  text += testing::read_text(testing::fixture_path("tokenizer/ggml-vocab-llama-spm.gguf.inp"));
  text += "  leading\n\n  \t spaces   and\ttabs 🦙 ½ Führer   ";
  // Fragment by fragment, as the tokenizer calls it (lines, with a prefix space).
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin + 1000);
    if (end == std::string::npos) end = text.size();
    const std::string fragment = " " + text.substr(begin, end - begin);
    std::vector<int32_t> a, b;
    by_word.encode(fragment, a);
    whole.encode(fragment, b);
    ASSERT_EQ(a, b) << "fragment at byte " << begin;
    begin = end;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SpmWordSplit, ::testing::Values("llama-spm", "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace toy::tokenizer
