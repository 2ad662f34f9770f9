// Fine-tuning data in JSON lines, one example per line (blank lines skipped),
// in the formats of Hugging Face TRL's SFT datasets:
//
//   {"text": "..."}                                causal LM: every token counts
//   {"prompt": "...", "completion": "..."}         prompt + completion as plain text
//   {"prompt": [messages], "completion": [messages]}   (conversational) chat template
//   {"messages": [{"role": "user", "content": "..."}, ...]}   chat template
//
// Only completion tokens, or the assistant turns of a conversation (their
// content and the end-of-turn marker the template closes them with), carry
// loss unless train_on_prompt. Other fields of a line are ignored. A line that
// is not valid JSON or lacks these fields is a toy::Error naming file and line.
//
// Tokenization is the model's own (tokenizer/tokenizer.h, BOS as the vocabulary
// asks; chat markers parsed as special tokens), and text / prompt-completion
// examples end with EOS (a target, so the model learns to stop), as TRL does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/dataset.h"

namespace toy::train {

struct SftRecord {
  enum class Kind { Text, PromptCompletion, ChatPromptCompletion, Messages };
  Kind kind = Kind::Text;
  std::string text;                              // Text
  std::string prompt, completion;                // PromptCompletion
  std::vector<tokenizer::ChatMessage> messages;  // Messages; Chat…: prompt then completion
  size_t n_prompt_messages = 0;                  // ChatPromptCompletion
  int64_t line = 0;                              // 1-based line of the file
};

// Parses JSON lines. `source` (the file) names errors: "data.jsonl:7: ...".
std::vector<SftRecord> parse_jsonl(std::string_view content, const std::string& source);

// Every string of the records, concatenated (to build a character vocabulary).
std::string records_text(const std::vector<SftRecord>& records);

struct SftOptions {
  bool train_on_prompt = false;  // loss on every token, not only completions / assistant turns
};

// Tokenizes records into examples with the model's tokenizer; the chat
// template is the vocabulary's (tokenizer.chat_template). Throws naming
// source:line when a record needs a chat template the model does not have.
std::vector<Example> tokenize_records(const std::vector<SftRecord>& records,
                                      const tokenizer::Tokenizer& tok, const SftOptions& options,
                                      const std::string& source);

// A --data file: plain text (a token stream for causal LM) or JSON lines.
struct DataSource {
  bool jsonl = false;
  std::string text;                // plain text
  std::vector<SftRecord> records;  // JSON lines
  // The text a character vocabulary built from this data must cover.
  std::string vocab_corpus() const { return jsonl ? records_text(records) : text; }
};

// `content` of `path` as JSON lines when `jsonl` or the name ends in ".jsonl".
DataSource read_data_source(const std::string& path, std::string content, bool jsonl);

// What training reads, tokenized by the tokenizer the output model carries.
struct TokenizedData {
  std::vector<int32_t> stream;    // plain text: the whole file's ids
  std::vector<Example> examples;  // JSON lines
};
TokenizedData tokenize_data(const DataSource& data, const tokenizer::Tokenizer& tok,
                            const SftOptions& options, const std::string& source);

}  // namespace toy::train
