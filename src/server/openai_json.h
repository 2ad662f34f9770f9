// The response bodies of the OpenAI endpoints: chat.completion,
// chat.completion.chunk (server-sent events), text_completion, usage and
// logprobs, shaped as OpenAI documents them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace toy::server {

// What every chunk and response of one completion repeats.
struct CompletionHeader {
  std::string id;  // chatcmpl-... / cmpl-...
  int64_t created = 0;
  std::string model;
  bool chat = false;
  bool logprobs = false;
};

// A fresh id with the endpoint's prefix.
CompletionHeader make_header(bool chat, const std::string& model, bool logprobs);

nlohmann::json usage_json(const JobResult& result);

// The whole non-streaming response.
nlohmann::json completion_response(const CompletionHeader& h, const std::string& text,
                                   const std::vector<TokenInfo>& tokens, const JobResult& result,
                                   const tokenizer::Tokenizer& tok);

// One streamed chunk: `text` and its tokens, `finish` ("stop"/"length") on the last
// content chunk, the assistant role on a chat's first chunk; with include_usage the
// field "usage": null, as OpenAI sends it on every chunk before the usage chunk.
nlohmann::json stream_chunk(const CompletionHeader& h, const std::string& text,
                            const std::vector<TokenInfo>& tokens, const char* finish, bool first,
                            bool include_usage, const tokenizer::Tokenizer& tok);
// The chunk after the last choice when stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk(const CompletionHeader& h, const JobResult& result);

// JSON text; bytes that are not UTF-8 (a token can end inside a character) become U+FFFD.
std::string dump(const nlohmann::json& j);
// One server-sent event: "data: <json>\n\n".
std::string sse_event(const nlohmann::json& j);

}  // namespace toy::server
