// Special tokens, BOS/EOS, vocabulary-less models, bad input and streaming.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "support/fixtures.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace toy::tokenizer {
namespace {

std::unique_ptr<Tokenizer> load(const std::string& vocab) {
  auto file = gguf::File::open(testing::fixture_path("tokenizer/ggml-vocab-" + vocab + ".gguf"));
  return Tokenizer::from_gguf(*file);
}

using Ids = std::vector<int32_t>;

TEST(Tokenizer, SpmAddsBosOnlyWhenAsked) {
  auto tok = load("llama-spm");
  EXPECT_EQ(tok->tokenize("Hello world"), (Ids{15043, 3186}));
  EXPECT_EQ(tok->tokenize("Hello world", {.add_special = true}), (Ids{1, 15043, 3186}));
  EXPECT_EQ(tok->tokenize("", {.add_special = true}), (Ids{1}));
  EXPECT_TRUE(tok->vocab().add_bos());
  EXPECT_FALSE(tok->vocab().add_eos());
}

TEST(Tokenizer, SpmParseSpecial) {
  auto tok = load("llama-spm");
  // With parse_special "<s>" is BOS and the text after it gets the space prefix.
  EXPECT_EQ(tok->tokenize("<s>Hello", {.parse_special = true}), (Ids{1, 15043}));
  const Ids plain = tok->tokenize("<s>Hello");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(tok->detokenize(plain), "<s>Hello");
}

TEST(Tokenizer, Phi3SpecialTokensStripWhitespaceAfterThem) {
  auto tok = load("phi-3");
  // <|end|> is RSTRIP for phi-3: the spaces and newline after it are dropped.
  EXPECT_EQ(tok->tokenize("<|end|>  \nHello", {.parse_special = true}), (Ids{32007, 15043}));
  EXPECT_TRUE(tok->is_eog(32007));
  EXPECT_TRUE(tok->is_eog(32000));
}

TEST(Tokenizer, BpeSpecialTokens) {
  auto tok = load("gpt-2");
  EXPECT_EQ(tok->tokenize("<|endoftext|>", {.parse_special = true}), (Ids{50256}));
  const Ids plain = tok->tokenize("<|endoftext|>");
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  // Control tokens print nothing unless asked.
  EXPECT_EQ(tok->detokenize(Ids{50256, 15496}), "Hello");
  DetokenizeOptions render;
  render.render_special = true;
  EXPECT_EQ(tok->detokenize(Ids{50256, 15496}, render), "<|endoftext|>Hello");
  // gpt-2 has no add_bos_token key: no BOS even with add_special.
  EXPECT_EQ(tok->tokenize("Hello", {.add_special = true}), (Ids{15496}));
}

TEST(Tokenizer, BpeAddsBosWhenTheVocabularySaysSo) {
  auto tok = load("deepseek-coder");
  const Ids ids = tok->tokenize("Hello", {.add_special = true});
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 32013);
  DetokenizeOptions options;
  options.remove_special = true;
  EXPECT_EQ(tok->detokenize(ids, options), "Hello");
}

TEST(Tokenizer, UserDefinedTokensMatchWithoutParseSpecial) {
  // deepseek-coder's 'ü' is a user-defined token: matched even in plain text.
  auto tok = load("deepseek-coder");
  const Ids ids = tok->tokenize("Führer");
  EXPECT_NE(std::find(ids.begin(), ids.end(), 32009), ids.end());
  EXPECT_EQ(tok->detokenize(ids), "Führer");
}

TEST(Tokenizer, NoVocabularyGivesAClearError) {
  auto file = gguf::File::open(testing::fixture_path("models/llama.gguf"));
  auto tok = Tokenizer::from_gguf(*file);
  EXPECT_FALSE(tok->has_text());
  EXPECT_GT(tok->n_vocab(), 0);
  try {
    tok->tokenize("hello");
    FAIL() << "expected toy::Error";
  } catch (const toy::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no vocabulary"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tok->detokenize(Ids{1, 2}), toy::Error);
}

TEST(Tokenizer, OutOfRangeIdsAreErrors) {
  auto tok = load("gpt-2");
  EXPECT_THROW(tok->detokenize(Ids{50257}), toy::Error);
  EXPECT_THROW(tok->detokenize(Ids{-1}), toy::Error);
  EXPECT_THROW(tok->piece(1 << 30), toy::Error);
}

TEST(Tokenizer, InvalidUtf8) {
  const std::string bad = "ok \xff\xfe \xe2\x82 end \xc0\x80\xed\xa0\x80";
  // SPM falls back to bytes: lossless, except that (as in llama.cpp) a stray lead
  // byte swallows the bytes of the "▁" that stands for a following space.
  auto spm = load("llama-spm");
  const std::string unspaced = "ok\xff\xfeend\xe2\x82x\xc0\x80";
  EXPECT_EQ(spm->detokenize(spm->tokenize(unspaced)), unspaced);
  EXPECT_EQ(spm->detokenize(spm->tokenize("a\xfe b")),
            "a\xfe\xe2\x96\x81"
            "b");
  // Byte-level BPE decodes leniently like llama.cpp: undecodable bytes become U+FFFD.
  for (const char* name : {"gpt-2", "falcon", "deepseek-coder", "starcoder"}) {
    auto bpe = load(name);
    DetokenizeOptions raw;
    raw.clean_spaces = false;
    const std::string text = bpe->detokenize(bpe->tokenize(bad), raw);
    EXPECT_EQ(text.substr(0, 3), "ok ") << name;
    EXPECT_NE(text.find("\xEF\xBF\xBD"), std::string::npos) << name;
  }
}

TEST(Tokenizer, CleanUpSpacesFollowsLlamaCpp) {
  std::string text = "a , b ! c ? d . e 's f 'm g 're h 've i 't j 'd k 'll l ' m";
  clean_up_spaces(text);
  EXPECT_EQ(text, "a, b! c? d. e's f'm g're h've i 't j 'd k 'll l'm");
  std::string empty;
  clean_up_spaces(empty);
  EXPECT_EQ(empty, "");
  // gpt-2 applies it by default; it can be turned off.
  auto tok = load("gpt-2");
  const Ids ids = tok->tokenize("Hi ?");
  EXPECT_EQ(tok->detokenize(ids), "Hi?");
  DetokenizeOptions raw;
  raw.clean_spaces = false;
  EXPECT_EQ(tok->detokenize(ids, raw), "Hi ?");
}

TEST(Tokenizer, TinyShakespeareTokenCountsMatchLlamaCpp) {
  // ../shared/bench/REFERENCE.md: llama.cpp's token counts for the whole file.
  const std::string text = testing::read_text(testing::fixture_path("text/tinyshakespeare.txt"));
  EXPECT_EQ(load("gpt-2")->tokenize(text).size(), 338025u);
  auto spm = load("llama-spm");
  const Ids ids = spm->tokenize(text);
  EXPECT_EQ(ids.size(), 368633u);
  EXPECT_EQ(spm->detokenize(ids), text);
  // The word cache must not change the result of a second call.
  EXPECT_EQ(spm->tokenize(text), ids);
}

TEST(StreamingDetokenizer, HoldsBackSplitCharacters) {
  auto tok = load("llama-spm");
  // "🦙" is four byte-fallback tokens <0xF0><0x9F><0xA6><0x99>.
  StreamingDetokenizer stream(*tok);
  EXPECT_EQ(stream.push(243), "");
  EXPECT_EQ(stream.push(162), "");
  EXPECT_EQ(stream.push(169), "");
  EXPECT_EQ(stream.push(156), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(stream.pending(), 0u);
  EXPECT_EQ(stream.push(243), "");
  EXPECT_EQ(stream.finish(), "\xF0");
}

TEST(StreamingDetokenizer, ConcatenationEqualsDetokenize) {
  const std::string text = "Hello 🦙 wörld — 我想在apple工作 ½ 😶‍🌫️ end";
  for (const char* name : {"llama-spm", "gpt-2", "deepseek-coder", "falcon"}) {
    auto tok = load(name);
    const Ids ids = tok->tokenize(text);
    StreamingDetokenizer stream(*tok, false, /*strip_leading_space=*/true);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string part = stream.push(id);
      // Every chunk handed out is whole characters.
      EXPECT_EQ(incomplete_utf8_tail(part), 0u);
      streamed += part;
    }
    streamed += stream.finish();
    DetokenizeOptions raw;
    raw.clean_spaces = false;
    EXPECT_EQ(streamed, tok->detokenize(ids, raw)) << name;
    EXPECT_EQ(streamed, text) << name;
  }
}

}  // namespace
}  // namespace toy::tokenizer
