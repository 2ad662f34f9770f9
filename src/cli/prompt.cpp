#include "cli/prompt.h"

#include <cstdio>

#include "cli/files.h"

namespace toy::cli {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string process_escapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char c = text[++i];
    static constexpr std::string_view kFrom = "nrtabfv0'\"\\?";
    static constexpr std::string_view kTo{"\n\r\t\a\b\f\v\0'\"\\?", 12};
    const size_t simple = kFrom.find(c);
    if (simple != std::string_view::npos) {
      out += kTo[simple];
      continue;
    }
    const int hi = c == 'x' && i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
    const int lo = hi >= 0 && i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    if (lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += '\\';  // not an escape: kept as written
      out += c;
    }
  }
  return out;
}

PromptOptions::PromptOptions(CommandLine& cl) {
  CLI::App& app = cl.app();
  prompt_opt_ = app.add_option("-p,--prompt", prompt_, "prompt text ('-': read standard input)");
  file_opt_ =
      app.add_option("-f,--file", file_, "read the prompt from a file ('-': standard input)");
  prompt_opt_->excludes(file_opt_);
  app.add_flag("-e,--escape", escapes_,
               "process escapes in the prompt (\\n, \\t, \\\", \\xHH, ...)");
}

std::string PromptOptions::read() const {
  std::string text;
  if (file_opt_->count()) {
    text = read_input_text({"-f", file_});
  } else if (prompt_ == "-") {
    text = read_input_text({"-p", "-"});
  } else {
    text = prompt_;
  }
  // A file's (or echo's) final newline ends the line, not the prompt: llama.cpp drops one too.
  if ((file_opt_->count() || prompt_ == "-") && text.ends_with('\n')) text.pop_back();
  return escapes_ ? process_escapes(text) : text;
}

tokenizer::ChatTemplate choose_chat_template(const std::string& command,
                                             const std::string& requested,
                                             const tokenizer::Vocab& vocab,
                                             const std::string& model_path) {
  using tokenizer::ChatTemplate;
  if (!requested.empty()) {
    const ChatTemplate family = tokenizer::detect_chat_template(requested);
    if (family == ChatTemplate::Unknown)
      usage_error("--template '", requested, "' is not a known chat template family (e.g. ",
                  "chatml, llama2, llama3, mistral-v3, gemma, phi3, zephyr, deepseek)");
    return family;
  }
  if (vocab.chat_template().empty()) {
    std::fprintf(stderr, "toy %s: %s has no tokenizer.chat_template; using chatml\n",
                 command.c_str(), model_path.c_str());
    return ChatTemplate::ChatML;
  }
  const ChatTemplate family = tokenizer::detect_chat_template(vocab.chat_template());
  if (family == ChatTemplate::Unknown)
    fail(model_path, ": tokenizer.chat_template is not a supported family; choose one with ",
         "--template (chatml, llama2, llama3, mistral-v3, gemma, phi3, zephyr, deepseek, ...)");
  return family;
}

}  // namespace toy::cli
