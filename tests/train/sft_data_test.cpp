// JSON-lines fine-tuning data: each format's tokens and loss mask (which token
// positions count), --train-on-prompt, and errors that name the file and line.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "support/fixtures.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/sft_data.h"
#include "train/vocab.h"

namespace toy::train {
namespace {

// The byte vocabulary: one token per byte, "▁" for a space; no chat template (ChatML then).
class SftBytes : public ::testing::Test {
 protected:
  SftBytes() : vocab_(TrainVocab::bytes()), tok_(vocab_.tokenizer()) {}

  Example one(const std::string& line, bool train_on_prompt = false) {
    const auto records = parse_jsonl(line, "t.jsonl");
    EXPECT_EQ(records.size(), 1u);
    const auto examples = tokenize_records(records, *tok_, {train_on_prompt}, "t.jsonl");
    return examples.at(0);
  }
  // The text of the tokens whose loss flag is `flag`.
  std::string text_where(const Example& ex, uint8_t flag) {
    std::string s;
    for (size_t i = 0; i < ex.tokens.size(); ++i)
      if (ex.loss[i] == flag) s += std::string(tok_->piece(ex.tokens[i], true));
    return s;
  }

  TrainVocab vocab_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
};

TEST_F(SftBytes, TextCountsEveryTokenAndEndsWithEos) {
  const Example ex = one(R"({"text": "Hi there", "id": 7})");
  std::vector<int32_t> expected = tok_->tokenize("Hi there");
  expected.push_back(TrainVocab::kEos);
  EXPECT_EQ(ex.tokens, expected);
  EXPECT_EQ(ex.loss, std::vector<uint8_t>(expected.size(), 1));
}

TEST_F(SftBytes, PromptCompletionCountsOnlyTheCompletionAndEos) {
  const Example ex = one(R"({"prompt": "Q: 2+2?\nA:", "completion": " 4"})");
  std::vector<int32_t> expected = tok_->tokenize("Q: 2+2?\nA: 4");
  expected.push_back(TrainVocab::kEos);
  EXPECT_EQ(ex.tokens, expected);
  EXPECT_EQ(text_where(ex, 0), "Q: 2+2?\nA:");
  EXPECT_EQ(text_where(ex, 1), " 4</s>");
  const Example all = one(R"({"prompt": "Q: 2+2?\nA:", "completion": " 4"})", true);
  EXPECT_EQ(all.tokens, ex.tokens);
  EXPECT_EQ(all.loss, std::vector<uint8_t>(ex.tokens.size(), 1));
}

TEST_F(SftBytes, MessagesCountOnlyAssistantTurnsThroughTheChatTemplate) {
  const Example ex =
      one(R"({"messages": [{"role": "system", "content": "Be brief."},)"
          R"( {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},)"
          R"( {"role": "user", "content": "bye"}, {"role": "assistant", "content": "ciao"}]})");
  // No tokenizer.chat_template: ChatML, as `toy chat` and llama.cpp use for such a model.
  const std::string rendered = tokenizer::format_chat(tokenizer::ChatTemplate::ChatML,
                                                      {{"system", "Be brief."},
                                                       {"user", "hi"},
                                                       {"assistant", "yo"},
                                                       {"user", "bye"},
                                                       {"assistant", "ciao"}},
                                                      false);
  EXPECT_EQ(ex.tokens, tok_->tokenize(rendered, {true, true}));  // no EOS added: the template ends
  // The assistant contents and the end-of-turn marker that closes them count.
  EXPECT_EQ(text_where(ex, 1), "yo<|im_end|>\nciao<|im_end|>\n");
  EXPECT_EQ(text_where(ex, 0),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\n<|im_start|>user\nbye<|im_end|>\n<|im_start|>assistant\n");
  const Example all = one(R"({"messages": [{"role": "user", "content": "hi"},)"
                          R"( {"role": "assistant", "content": "yo"}]})",
                          true);
  EXPECT_EQ(all.loss, std::vector<uint8_t>(all.tokens.size(), 1));
}

TEST_F(SftBytes, ConversationalPromptCompletionCountsTheCompletionMessages) {
  const Example ex = one(R"({"prompt": [{"role": "user", "content": "hi"}],)"
                         R"( "completion": [{"role": "assistant", "content": "yo"}]})");
  EXPECT_EQ(text_where(ex, 1), "yo<|im_end|>\n");
  EXPECT_EQ(text_where(ex, 0), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST_F(SftBytes, BlankLinesAreSkippedAndLinesKeepTheirNumbers) {
  const auto records = parse_jsonl("{\"text\": \"a\"}\r\n\n  \n{\"text\": \"b\"}", "t.jsonl");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].line, 1);
  EXPECT_EQ(records[1].line, 4);
  EXPECT_EQ(records[1].text, "b");
}

// Every malformed line is an error naming file:line and what is wrong.
TEST(SftData, ErrorsNameTheFileAndLine) {
  const std::string good = "{\"text\": \"fine\"}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"text\": \"unterminated}", "invalid JSON"},
      {"[1, 2]", "expected a JSON object"},
      {"{\"txt\": \"typo\"}", "\"txt\""},
      {"{\"text\": 5}", "\"text\" must be a string"},
      {"{\"prompt\": \"p\"}", "\"prompt\" without \"completion\""},
      {"{\"completion\": \"c\"}", "\"completion\" without \"prompt\""},
      {"{\"prompt\": \"p\", \"completion\": [{\"role\": \"assistant\", \"content\": \"c\"}]}",
       "both be strings or both be message arrays"},
      {"{\"messages\": \"hi\"}", "non-empty array"},
      {"{\"messages\": [{\"role\": \"user\"}]}", "\"messages\"[0]"},
      {"{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", "role \"robot\""},
  };
  for (const auto& [line, message] : cases) {
    try {
      parse_jsonl(good + good + line + "\n" + good, "data/sft.jsonl");
      ADD_FAILURE() << "no error for " << line;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("data/sft.jsonl:3: "), std::string::npos) << what;
      EXPECT_NE(what.find(message), std::string::npos) << what;
    }
  }
  EXPECT_THROW(parse_jsonl("\n\n", "empty.jsonl"), Error);
}

TEST(SftData, DataSourceIsJsonLinesByExtensionOrFlag) {
  EXPECT_TRUE(read_data_source("a.jsonl", "{\"text\": \"x\"}", false).jsonl);
  EXPECT_TRUE(read_data_source("a.txt", "{\"text\": \"x\"}", true).jsonl);
  const DataSource text = read_data_source("a.txt", "{\"text\": \"x\"}", false);
  EXPECT_FALSE(text.jsonl);
  EXPECT_EQ(text.vocab_corpus(), "{\"text\": \"x\"}");
}

// A real vocabulary with a chat template: the markers are single special tokens and the
// assistant's end-of-turn token carries loss.
TEST(SftData, RealChatTemplateMarkersAreSpecialTokens) {
  const auto file = gguf::File::open(testing::fixture_path("tokenizer/ggml-vocab-phi-3.gguf"));
  const auto tok = tokenizer::Tokenizer::from_gguf(*file);
  if (tokenizer::detect_chat_template(tok->vocab().chat_template()) !=
      tokenizer::ChatTemplate::Phi3)
    GTEST_SKIP() << "the phi-3 vocabulary fixture has no phi3 chat template";
  const auto records = parse_jsonl(R"({"messages": [{"role": "user", "content": "Hello"},)"
                                   R"( {"role": "assistant", "content": "Hi there"}]})",
                                   "p.jsonl");
  const Example ex = tokenize_records(records, *tok, {}, "p.jsonl").at(0);
  const int32_t end = tok->vocab().find("<|end|>"), assistant = tok->vocab().find("<|assistant|>");
  ASSERT_GE(end, 0);
  ASSERT_GE(assistant, 0);
  std::vector<int32_t> counted;
  for (size_t i = 0; i < ex.tokens.size(); ++i)
    if (ex.loss[i]) counted.push_back(ex.tokens[i]);
  EXPECT_EQ(tok->detokenize(counted, {false, true, true}).substr(0, 9), "Hi there<");
  EXPECT_NE(std::find(counted.begin(), counted.end(), end), counted.end());
  EXPECT_EQ(std::find(counted.begin(), counted.end(), assistant), counted.end());
}

}  // namespace
}  // namespace toy::train
