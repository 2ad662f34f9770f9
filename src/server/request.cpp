#include "server/request.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace toy::server {
namespace {

using nlohmann::json;

// The field, or nullptr when absent or null (OpenAI treats null as "not given").
const json* field(const json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> number(const json& body, const char* key, double lo, double hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad_request(str("'", key, "' must be a number"), key);
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi))
    bad_request(str("'", key, "' must be between ", lo, " and ", hi, ", got ", x), key);
  return x;
}

std::optional<int64_t> integer(const json& body, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) bad_request(str("'", key, "' must be an integer"), key);
  // Unsigned values above int64 are refused as out of range, not wrapped.
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
    bad_request(str("'", key, "' must be between ", lo, " and ", hi), key);
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    bad_request(str("'", key, "' must be between ", lo, " and ", hi, ", got ", x), key);
  return x;
}

std::optional<bool> boolean(const json& body, const char* key) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad_request(str("'", key, "' must be true or false"), key);
  return v->get<bool>();
}

std::optional<std::string> string(const json& body, const char* key) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) bad_request(str("'", key, "' must be a string"), key);
  return v->get<std::string>();
}

void refuse_unless(bool ok, const std::string& message, const char* param) {
  if (!ok) bad_request(message, param);
}

std::vector<std::string> parse_stop(const json& body) {
  const json* v = field(body, "stop");
  std::vector<std::string> stops;
  if (!v) return stops;
  if (v->is_string()) {
    if (!v->get<std::string>().empty()) stops.push_back(v->get<std::string>());
    return stops;
  }
  if (!v->is_array()) bad_request("'stop' must be a string or an array of strings", "stop");
  if (v->size() > 4) bad_request("'stop' holds at most 4 sequences", "stop");
  for (const json& s : *v) {
    if (!s.is_string()) bad_request("'stop' must be a string or an array of strings", "stop");
    if (!s.get<std::string>().empty()) stops.push_back(s.get<std::string>());
  }
  return stops;
}

std::vector<std::pair<int32_t, float>> parse_logit_bias(const json& body) {
  const json* v = field(body, "logit_bias");
  std::vector<std::pair<int32_t, float>> bias;
  if (!v) return bias;
  if (!v->is_object())
    bad_request("'logit_bias' must be an object of token id -> bias", "logit_bias");
  for (const auto& [key, value] : v->items()) {
    size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || id < 0 || id > std::numeric_limits<int32_t>::max())
      bad_request(str("'logit_bias' key '", key, "' is not a token id"), "logit_bias");
    if (!value.is_number() || !(value.get<double>() >= -100.0 && value.get<double>() <= 100.0))
      bad_request(str("'logit_bias' of token ", key, " must be a number in [-100, 100]"),
                  "logit_bias");
    bias.emplace_back(static_cast<int32_t>(id), value.get<float>());
  }
  return bias;
}

// The fields chat and completions share.
void parse_common(const json& body, CompletionRequest& r) {
  r.model = string(body, "model").value_or("");
  r.stream = boolean(body, "stream").value_or(false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad_request("'stream_options' must be an object", "stream_options");
    r.include_usage = boolean(*so, "include_usage").value_or(false);
  }
  refuse_unless(integer(body, "n", 1, 128).value_or(1) == 1,
                "only n = 1 is supported (one choice per request)", "n");
  GenerationParams& p = r.params;
  if (auto t = number(body, "temperature", 0.0, 2.0))
    p.sampler.temperature = static_cast<float>(*t);
  if (auto t = number(body, "top_p", 0.0, 1.0)) {
    // top_p = 0 keeps only the most likely token: greedy.
    if (*t == 0.0)
      p.sampler.temperature = 0.0f;
    else
      p.sampler.top_p = static_cast<float>(*t);
  }
  if (auto k = integer(body, "top_k", 0, std::numeric_limits<int32_t>::max()))
    p.sampler.top_k = static_cast<int32_t>(*k);
  if (auto m = number(body, "min_p", 0.0, 0.999)) p.sampler.min_p = static_cast<float>(*m);
  if (auto rp = number(body, "repeat_penalty", 0.01, 100.0))
    p.sampler.repeat_penalty = static_cast<float>(*rp);
  if (auto pp = number(body, "presence_penalty", -2.0, 2.0))
    p.presence_penalty = static_cast<float>(*pp);
  if (auto fp = number(body, "frequency_penalty", -2.0, 2.0))
    p.frequency_penalty = static_cast<float>(*fp);
  if (const json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) bad_request("'seed' must be an integer", "seed");
    p.sampler.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                                : static_cast<uint64_t>(seed->get<int64_t>());
    p.seeded = true;
  }
  p.stop = parse_stop(body);
  p.logit_bias = parse_logit_bias(body);
  const int64_t kMaxTokens = std::numeric_limits<int32_t>::max();
  if (auto m = integer(body, "max_tokens", 1, kMaxTokens)) p.max_tokens = *m;
}

std::string message_content(const json& message, size_t index, const std::string& role) {
  const std::string param = str("messages[", index, "].content");
  const json* content = field(message, "content");
  if (!content) {
    // An assistant turn may carry tool calls and no text; anything else needs content.
    refuse_unless(role == "assistant", str(param, " is required"), "messages");
    return "";
  }
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array())
    bad_request(str(param, " must be a string or an array of text parts"), "messages");
  std::string text;
  for (const json& part : *content) {
    if (!part.is_object() || string(part, "type").value_or("") != "text" || !field(part, "text") ||
        !part["text"].is_string())
      bad_request(str(param,
                      ": only text parts ({\"type\": \"text\", \"text\": ...}) are "
                      "supported by this model"),
                  "messages");
    text += part["text"].get<std::string>();
  }
  return text;
}

}  // namespace

json parse_json_object(const std::string& body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded())
    bad_request(
        "the request body is not valid JSON (expected an object, e.g. {\"messages\": "
        "[...]})");
  if (!parsed.is_object()) bad_request("the request body must be a JSON object");
  return parsed;
}

CompletionRequest parse_chat_request(const json& body) {
  CompletionRequest r;
  r.chat = true;
  parse_common(body, r);
  if (auto m = integer(body, "max_completion_tokens", 1, std::numeric_limits<int32_t>::max()))
    r.params.max_tokens = *m;
  const bool logprobs = boolean(body, "logprobs").value_or(false);
  const auto top = integer(body, "top_logprobs", 0, 20);
  refuse_unless(!top || logprobs, "'top_logprobs' needs 'logprobs': true", "top_logprobs");
  if (logprobs) r.params.top_logprobs = static_cast<int>(top.value_or(0));
  for (const char* unsupported : {"tools", "functions"}) {
    const json* v = field(body, unsupported);
    refuse_unless(!v || (v->is_array() && v->empty()),
                  str("'", unsupported, "' (function calling) is not supported"), unsupported);
  }
  if (const json* format = field(body, "response_format")) {
    refuse_unless(format->is_object() && string(*format, "type").value_or("text") == "text",
                  "only response_format {\"type\": \"text\"} is supported", "response_format");
  }
  const json* messages = field(body, "messages");
  if (!messages) bad_request("'messages' is required", "messages");
  if (!messages->is_array() || messages->empty())
    bad_request("'messages' must be a non-empty array of {\"role\", \"content\"}", "messages");
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    if (!m.is_object()) bad_request(str("messages[", i, "] must be an object"), "messages");
    const auto role = string(m, "role");
    if (!role) bad_request(str("messages[", i, "].role is required"), "messages");
    // "developer" is the newer name of the system role.
    const std::string name = *role == "developer" ? "system" : *role;
    if (name != "system" && name != "user" && name != "assistant")
      bad_request(str("messages[", i, "].role '", *role,
                      "' is not supported (system, developer, user, assistant)"),
                  "messages");
    r.messages.push_back({name, message_content(m, i, name)});
  }
  return r;
}

CompletionRequest parse_completion_request(const json& body) {
  CompletionRequest r;
  parse_common(body, r);
  // The legacy completions API generates 16 tokens unless told otherwise.
  if (!field(body, "max_tokens")) r.params.max_tokens = 16;
  if (auto lp = integer(body, "logprobs", 0, 20)) r.params.top_logprobs = static_cast<int>(*lp);
  refuse_unless(!boolean(body, "echo").value_or(false), "'echo' is not supported", "echo");
  refuse_unless(string(body, "suffix").value_or("").empty(), "'suffix' is not supported", "suffix");
  refuse_unless(integer(body, "best_of", 1, 128).value_or(1) == 1, "only best_of = 1 is supported",
                "best_of");
  const json* prompt = field(body, "prompt");
  if (!prompt) bad_request("'prompt' is required", "prompt");
  const json* p = prompt;
  // One prompt: a string, token ids, or a one-element array of either.
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array()))
    p = &(*p)[0];
  else if (p->is_array() && !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array()))
    bad_request("only one prompt per request is supported (n = 1)", "prompt");
  if (p->is_string()) {
    r.prompt_text = p->get<std::string>();
    return r;
  }
  if (!p->is_array() || p->empty())
    bad_request("'prompt' must be a string or a non-empty array of token ids", "prompt");
  for (const json& id : *p) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > std::numeric_limits<int32_t>::max())
      bad_request("'prompt' token ids must be non-negative integers", "prompt");
    r.prompt_tokens.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return r;
}

TokenizeRequest parse_tokenize_request(const json& body) {
  TokenizeRequest r;
  const auto content = string(body, "content");
  if (!content) bad_request("'content' (the text to tokenize) is required", "content");
  r.content = *content;
  r.add_special = boolean(body, "add_special").value_or(false);
  r.parse_special = boolean(body, "parse_special").value_or(true);
  r.with_pieces = boolean(body, "with_pieces").value_or(false);
  return r;
}

std::vector<int32_t> parse_detokenize_request(const json& body) {
  const json* tokens = field(body, "tokens");
  if (!tokens || !tokens->is_array())
    bad_request("'tokens' (an array of token ids) is required", "tokens");
  std::vector<int32_t> ids;
  for (const json& id : *tokens) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > std::numeric_limits<int32_t>::max())
      bad_request("'tokens' must hold non-negative integer token ids", "tokens");
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return ids;
}

}  // namespace toy::server
