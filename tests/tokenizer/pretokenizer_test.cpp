// The pre-tokenizer regexes of every supported tokenizer.ggml.pre family
// compile, cover the text exactly, and split as llama.cpp's do.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/pretokenizer.h"

namespace toy::tokenizer {
namespace {

std::vector<std::string> words(PreType type, const std::string& text) {
  PreTokenizer pre(pre_tokenizer_patterns(type));
  std::vector<Span> spans;
  pre.split(text, spans);
  std::vector<std::string> out;
  size_t expected_offset = 0;
  for (const Span& span : spans) {
    EXPECT_EQ(span.offset, expected_offset);
    EXPECT_GT(span.length, 0u);
    expected_offset = span.offset + span.length;
    out.push_back(text.substr(span.offset, span.length));
  }
  EXPECT_EQ(expected_offset, text.size());
  return out;
}

using Words = std::vector<std::string>;

TEST(PreTokenizer, EveryFamilyCoversTheText) {
  const std::string text =
      "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～ \n\n  x\t 333 3.3 'RE";
  for (PreType type : {PreType::Default, PreType::Llama3, PreType::DeepseekLlm,
                       PreType::DeepseekCoder, PreType::Falcon, PreType::Starcoder, PreType::Gpt2,
                       PreType::Qwen2, PreType::Poro, PreType::Viking, PreType::Chameleon})
    words(type, text);
}

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(words(PreType::Gpt2, "Hello world's  end\n"),
            (Words{"Hello", " world", "'s", " ", " end", "\n"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsByThree) {
  EXPECT_EQ(words(PreType::Llama3, "12345 abc\n\n  x"),
            (Words{"123", "45", " abc", "\n\n", " ", " x"}));
  EXPECT_EQ(words(PreType::Qwen2, "123 I'M"), (Words{"1", "2", "3", " I", "'M"}));
}

TEST(PreTokenizer, DeepseekLlm) {
  EXPECT_EQ(words(PreType::DeepseekLlm, "Hello 世界 42!\n"),
            (Words{"Hello", " ", "世界", " ", "42", "!", "\n"}));
}

TEST(PreTokenizer, EmptyText) {
  EXPECT_TRUE(words(PreType::Gpt2, "").empty());
}

}  // namespace
}  // namespace toy::tokenizer
