#include "train/sft_data.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"

namespace toy::train {
namespace {

using nlohmann::json;
using tokenizer::ChatMessage;
using tokenizer::ChatTemplate;
using Kind = SftRecord::Kind;

// The start of a line for messages, cut so a long line does not flood the terminal.
std::string excerpt(std::string_view line) {
  return line.size() > 120 ? std::string(line.substr(0, 120)) + "..." : std::string(line);
}

std::string keys_of(const json& object) {
  std::string keys;
  for (auto it = object.begin(); it != object.end(); ++it)
    keys += (keys.empty() ? "" : ", ") + ("\"" + it.key() + "\"");
  return keys.empty() ? "none" : keys;
}

// [{"role": ..., "content": ...}, ...] -> messages; `field` names it in errors.
std::vector<ChatMessage> parse_messages(const json& value, const std::string& where,
                                        const char* field) {
  if (!value.is_array() || value.empty())
    fail(where, ": \"", field, "\" must be a non-empty array of {\"role\", \"content\"} objects");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < value.size(); ++i) {
    const json& m = value[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      fail(where, ": \"", field, "\"[", i, "] must be an object with string \"role\" and ",
           "\"content\" fields");
    const std::string& role = m["role"].get_ref<const std::string&>();
    if (role != "system" && role != "user" && role != "assistant")
      fail(where, ": \"", field, "\"[", i, "]: role \"", role,
           "\" is not one of system, user, assistant");
    messages.push_back({role, m["content"].get<std::string>()});
  }
  return messages;
}

SftRecord parse_record(const json& j, std::string_view line, const std::string& where) {
  if (!j.is_object()) fail(where, ": expected a JSON object, found ", excerpt(line));
  SftRecord r;
  if (j.contains("messages")) {
    r.kind = Kind::Messages;
    r.messages = parse_messages(j["messages"], where, "messages");
    return r;
  }
  if (j.contains("prompt") || j.contains("completion")) {
    if (!j.contains("prompt") || !j.contains("completion"))
      fail(where, ": \"", j.contains("prompt") ? "prompt" : "completion", "\" without \"",
           j.contains("prompt") ? "completion" : "prompt", "\"");
    const json& p = j["prompt"];
    const json& c = j["completion"];
    if (p.is_string() && c.is_string()) {
      r.kind = Kind::PromptCompletion;
      r.prompt = p.get<std::string>();
      r.completion = c.get<std::string>();
      return r;
    }
    if (p.is_array() && c.is_array()) {  // TRL's conversational prompt-completion
      r.kind = Kind::ChatPromptCompletion;
      r.messages = parse_messages(p, where, "prompt");
      r.n_prompt_messages = r.messages.size();
      for (ChatMessage& m : parse_messages(c, where, "completion")) r.messages.push_back(m);
      return r;
    }
    fail(where, ": \"prompt\" and \"completion\" must both be strings or both be message arrays");
  }
  if (j.contains("text")) {
    if (!j["text"].is_string()) fail(where, ": \"text\" must be a string");
    r.kind = Kind::Text;
    r.text = j["text"].get<std::string>();
    return r;
  }
  fail(where, ": expected a \"text\", \"prompt\" + \"completion\" or \"messages\" field; found ",
       keys_of(j));
}

// Length of the common prefix of a and b.
size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return static_cast<size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first -
                             a.begin());
}

// The chat template of the vocabulary. A model without one is chatted with in
// ChatML by `toy chat` and llama.cpp, so that is what it is trained on too.
ChatTemplate chat_template_of(const tokenizer::Vocab& vocab, const std::string& where) {
  if (vocab.chat_template().empty()) return ChatTemplate::ChatML;
  const ChatTemplate family = tokenizer::detect_chat_template(vocab.chat_template());
  if (family == ChatTemplate::Unknown)
    fail(where, ": the model's tokenizer.chat_template is not a supported family (chatml, ",
         "llama2, llama3, mistral, gemma, phi3, zephyr, deepseek, ...); use \"text\" or ",
         "\"prompt\"/\"completion\" examples");
  return family;
}

}  // namespace

std::vector<SftRecord> parse_jsonl(std::string_view content, const std::string& source) {
  std::vector<SftRecord> records;
  int64_t number = 0;
  for (size_t start = 0; start < content.size();) {
    size_t end = content.find('\n', start);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(start, end - start);
    start = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = source + ":" + std::to_string(number);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      fail(where, ": invalid JSON (", e.what(), "): ", excerpt(line));
    }
    SftRecord r = parse_record(j, line, where);
    r.line = number;
    records.push_back(std::move(r));
  }
  if (records.empty()) fail(source, ": no examples (every line is empty)");
  return records;
}

std::string records_text(const std::vector<SftRecord>& records) {
  std::string text;
  for (const SftRecord& r : records) {
    text += r.text;
    text += r.prompt;
    text += r.completion;
    for (const ChatMessage& m : r.messages) text += m.role + m.content;
  }
  return text;
}

// Loss masks by token prefixes: the tokens of a rendered prefix (the prompt, or
// the conversation up to an assistant turn) are compared with the tokens of the
// whole example, and the turn's tokens are those between two such prefixes.
// Tokenizing once and comparing keeps the example's ids exactly those of the
// whole text; where a token straddles the boundary it counts as completion.
std::vector<Example> tokenize_records(const std::vector<SftRecord>& records,
                                      const tokenizer::Tokenizer& tok, const SftOptions& options,
                                      const std::string& source) {
  const tokenizer::TokenizeOptions plain{/*add_special=*/true, /*parse_special=*/false};
  const tokenizer::TokenizeOptions chat{/*add_special=*/true, /*parse_special=*/true};
  const int32_t eos = tok.vocab().eos();
  std::optional<ChatTemplate> family;  // looked up at the first chat example
  std::vector<Example> examples;
  examples.reserve(records.size());
  for (const SftRecord& r : records) {
    const std::string where = source + ":" + std::to_string(r.line);
    Example ex;
    std::vector<std::pair<size_t, size_t>> spans;  // token ranges that carry loss
    // The tokens of the first n messages through the template.
    auto render = [&](size_t n_messages, bool generation_prompt) {
      if (!family) family = chat_template_of(tok.vocab(), where);
      const auto first = r.messages.begin();
      const std::vector<ChatMessage> head(first, first + static_cast<std::ptrdiff_t>(n_messages));
      return tok.tokenize(tokenizer::format_chat(*family, head, generation_prompt), chat);
    };
    switch (r.kind) {
      case Kind::Text:
        ex.tokens = tok.tokenize(r.text, plain);
        spans.push_back({0, SIZE_MAX});
        break;
      case Kind::PromptCompletion:
        ex.tokens = tok.tokenize(r.prompt + r.completion, plain);
        spans.push_back({common_prefix(tok.tokenize(r.prompt, plain), ex.tokens), SIZE_MAX});
        break;
      case Kind::ChatPromptCompletion:
        ex.tokens = render(r.messages.size(), false);
        spans.push_back({common_prefix(render(r.n_prompt_messages, true), ex.tokens), SIZE_MAX});
        break;
      case Kind::Messages:
        ex.tokens = render(r.messages.size(), false);
        for (size_t i = 0; i < r.messages.size(); ++i) {
          if (r.messages[i].role != "assistant") continue;
          spans.push_back({common_prefix(render(i, true), ex.tokens),
                           common_prefix(render(i + 1, false), ex.tokens)});
        }
        break;
    }
    // Plain text carries no end-of-turn marker: EOS ends it (unless the vocabulary added it).
    const bool plain_text = r.kind == Kind::Text || r.kind == Kind::PromptCompletion;
    if (plain_text && eos >= 0 && (ex.tokens.empty() || ex.tokens.back() != eos))
      ex.tokens.push_back(eos);
    ex.loss.assign(ex.tokens.size(), options.train_on_prompt ? 1 : 0);
    for (auto [begin, end] : spans)
      for (size_t i = begin; i < std::min(end, ex.tokens.size()); ++i) ex.loss[i] = 1;
    examples.push_back(std::move(ex));
  }
  return examples;
}

DataSource read_data_source(const std::string& path, std::string content, bool jsonl) {
  DataSource data;
  data.jsonl = jsonl || path.ends_with(".jsonl");
  if (data.jsonl) {
    data.records = parse_jsonl(content, path);
  } else {
    data.text = std::move(content);
  }
  return data;
}

TokenizedData tokenize_data(const DataSource& data, const tokenizer::Tokenizer& tok,
                            const SftOptions& options, const std::string& source) {
  TokenizedData out;
  if (data.jsonl) {
    out.examples = tokenize_records(data.records, tok, options, source);
  } else {
    // Raw text, no BOS: the ids `toy tokenize` gives for the file.
    out.stream = tok.tokenize(data.text);
  }
  return out;
}

}  // namespace toy::train
