// Chat templates without a Jinja engine: the family is recognised from
// tokenizer.chat_template by the markers it contains (as llama.cpp's
// llm_chat_detect_template), and each family's formatting is written out
// (llm_chat_apply_template). The formatted prompt carries no BOS: tokenize it
// with add_special (and parse_special, so the markers become their tokens).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace toy::tokenizer {

enum class ChatTemplate {
  Unknown,
  ChatML,          // <|im_start|>role\n...<|im_end|>
  Llama2,          // [INST] ... [/INST] (system text prepended plainly)
  Llama2Sys,       // with <<SYS>> blocks
  Llama2SysBos,    // with <s> before each later [INST]
  Llama2SysStrip,  // with message contents stripped
  MistralV1,
  MistralV3,
  MistralV3Tekken,
  MistralV7,
  Llama3,  // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  Phi3,    // <|role|>\n...<|end|>\n
  Phi4,
  Falcon3,
  Zephyr,     // <|role|>\n...<|endoftext|>\n  (HF "</s>" variant: <|role|>\n...</s>\n)
  Gemma,      // <start_of_turn>role\n...<end_of_turn>\n, assistant = model
  Deepseek,   // deepseek-coder: ### Instruction: / ### Response:
  Deepseek2,  // User: / Assistant:
  Deepseek3,  // <｜User｜> / <｜Assistant｜>
  Vicuna,
  VicunaOrca,
  CommandR,
};

struct ChatMessage {
  std::string role;  // system, user, assistant
  std::string content;
};

// The family of a Jinja template text (or of a family name such as "chatml").
ChatTemplate detect_chat_template(std::string_view template_text);
// Names accepted by detect_chat_template and printed in messages: "chatml", "llama3", ...
std::string_view chat_template_name(ChatTemplate family);
std::optional<ChatTemplate> chat_template_from_name(std::string_view name);

// The prompt for `messages`; `add_generation_prompt` opens the assistant's turn.
// Throws toy::Error for ChatTemplate::Unknown.
std::string format_chat(ChatTemplate family, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

}  // namespace toy::tokenizer
