// Parsing and validating the JSON bodies of the OpenAI endpoints (and
// llama-server's /tokenize, /detokenize). Everything a client can get wrong is
// an ApiError 400 naming the field; nothing here touches the model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/generation.h"
#include "tokenizer/chat_template.h"

namespace toy::server {

// POST /v1/chat/completions or /v1/completions, validated.
struct CompletionRequest {
  bool chat = false;
  std::string model;                             // "" when not given
  std::vector<tokenizer::ChatMessage> messages;  // chat
  std::optional<std::string> prompt_text;        // completions: a text prompt...
  std::vector<int32_t> prompt_tokens;            // ...or token ids (not yet range-checked)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  GenerationParams params;
};

// The body as a JSON object (400 for invalid JSON or another type).
nlohmann::json parse_json_object(const std::string& body);

CompletionRequest parse_chat_request(const nlohmann::json& body);
CompletionRequest parse_completion_request(const nlohmann::json& body);

// POST /tokenize: {"content": text, "add_special": bool, "parse_special": bool, "with_pieces":
// bool}
struct TokenizeRequest {
  std::string content;
  bool add_special = false;
  bool parse_special = true;
  bool with_pieces = false;
};
TokenizeRequest parse_tokenize_request(const nlohmann::json& body);

// POST /detokenize: {"tokens": [ids]}
std::vector<int32_t> parse_detokenize_request(const nlohmann::json& body);

}  // namespace toy::server
