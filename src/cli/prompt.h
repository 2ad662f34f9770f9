// Where a prompt comes from, as llama.cpp's tools take it: -p TEXT, -p - (standard
// input), -f FILE (-f - : standard input), and -e to turn escapes like \n into the
// characters they stand for.
#pragma once

#include <string>
#include <string_view>

#include "cli/command_line.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/vocab.h"

namespace toy::cli {

// llama.cpp's string_process_escapes: \n \r \t \' \" \\ \? \a \b \f \v \0 and \xHH; any
// other backslash sequence is kept as written.
std::string process_escapes(std::string_view text);

// The chat template family of `toy chat` and `toy serve`: --template's when given (a usage
// error when unknown), else the model's, else ChatML with a note naming `command` (as
// llama.cpp does for a model without tokenizer.chat_template).
tokenizer::ChatTemplate choose_chat_template(const std::string& command,
                                             const std::string& requested,
                                             const tokenizer::Vocab& vocab,
                                             const std::string& model_path);

class PromptOptions {
 public:
  // Adds -p/--prompt, -f/--file and -e/--escape to `cl` (mutually exclusive -p and -f).
  explicit PromptOptions(CommandLine& cl);

  CLI::Option* prompt_option() { return prompt_opt_; }
  CLI::Option* file_option() { return file_opt_; }
  bool given() const { return prompt_opt_->count() + file_opt_->count() > 0; }
  // The prompt text after parsing (reads the file or standard input).
  std::string read() const;

 private:
  std::string prompt_, file_;
  bool escapes_ = false;
  CLI::Option* prompt_opt_;
  CLI::Option* file_opt_;
};

}  // namespace toy::cli
