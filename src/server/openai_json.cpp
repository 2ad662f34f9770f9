#include "server/openai_json.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

namespace toy::server {
namespace {

using nlohmann::json;

std::string random_suffix() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  uint64_t x = salt ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
  x ^= x >> 31;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

json token_bytes(std::string_view piece) {
  json bytes = json::array();
  for (unsigned char c : piece) bytes.push_back(static_cast<int>(c));
  return bytes;
}

// chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}, ...]}
json chat_logprobs(const std::vector<TokenInfo>& tokens, const tokenizer::Tokenizer& tok) {
  json content = json::array();
  for (const TokenInfo& t : tokens) {
    const std::string_view piece = tok.piece(t.id, true);
    json top = json::array();
    for (const auto& [id, lp] : t.top) {
      const std::string_view p = tok.piece(id, true);
      top.push_back({{"token", std::string(p)}, {"logprob", lp}, {"bytes", token_bytes(p)}});
    }
    content.push_back({{"token", std::string(piece)},
                       {"logprob", t.logprob},
                       {"bytes", token_bytes(piece)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

// completions: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}
json completion_logprobs(const std::vector<TokenInfo>& tokens, const tokenizer::Tokenizer& tok) {
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  size_t offset = 0;
  for (const TokenInfo& t : tokens) {
    const std::string piece(tok.piece(t.id, true));
    out["tokens"].push_back(piece);
    out["token_logprobs"].push_back(t.logprob);
    json top = json::object();
    for (const auto& [id, lp] : t.top) top[std::string(tok.piece(id, true))] = lp;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(offset);
    offset += piece.size();
  }
  return out;
}

json choice_logprobs(const CompletionHeader& h, const std::vector<TokenInfo>& tokens,
                     const tokenizer::Tokenizer& tok) {
  if (!h.logprobs) return nullptr;
  return h.chat ? chat_logprobs(tokens, tok) : completion_logprobs(tokens, tok);
}

}  // namespace

CompletionHeader make_header(bool chat, const std::string& model, bool logprobs) {
  CompletionHeader h;
  h.chat = chat;
  h.model = model;
  h.logprobs = logprobs;
  h.id = (chat ? "chatcmpl-" : "cmpl-") + random_suffix();
  h.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  return h;
}

json usage_json(const JobResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

json completion_response(const CompletionHeader& h, const std::string& text,
                         const std::vector<TokenInfo>& tokens, const JobResult& result,
                         const tokenizer::Tokenizer& tok) {
  json choice = {{"index", 0},
                 {"logprobs", choice_logprobs(h, tokens, tok)},
                 {"finish_reason", finish_reason_name(result.finish)}};
  if (h.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  } else {
    choice["text"] = text;
  }
  return {{"id", h.id},
          {"object", h.chat ? "chat.completion" : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"system_fingerprint", nullptr},
          {"choices", json::array({choice})},
          {"usage", usage_json(result)}};
}

json stream_chunk(const CompletionHeader& h, const std::string& text,
                  const std::vector<TokenInfo>& tokens, const char* finish, bool first,
                  bool include_usage, const tokenizer::Tokenizer& tok) {
  json choice = {{"index", 0},
                 {"logprobs", tokens.empty() ? json(nullptr) : choice_logprobs(h, tokens, tok)},
                 {"finish_reason", finish ? json(finish) : json(nullptr)}};
  if (h.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && !finish)) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  json chunk = {{"id", h.id},
                {"object", h.chat ? "chat.completion.chunk" : "text_completion"},
                {"created", h.created},
                {"model", h.model},
                {"system_fingerprint", nullptr},
                {"choices", json::array({choice})}};
  if (include_usage) chunk["usage"] = nullptr;
  return chunk;
}

json usage_chunk(const CompletionHeader& h, const JobResult& result) {
  return {{"id", h.id},
          {"object", h.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"system_fingerprint", nullptr},
          {"choices", json::array()},
          {"usage", usage_json(result)}};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_event(const json& j) {
  return "data: " + dump(j) + "\n\n";
}

}  // namespace toy::server
