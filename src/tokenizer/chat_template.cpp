#include "tokenizer/chat_template.h"

#include <cctype>
#include <utility>

#include "core/error.h"

namespace toy::tokenizer {

namespace {

constexpr std::pair<const char*, ChatTemplate> kNames[] = {
    {"chatml", ChatTemplate::ChatML},
    {"llama2", ChatTemplate::Llama2},
    {"llama2-sys", ChatTemplate::Llama2Sys},
    {"llama2-sys-bos", ChatTemplate::Llama2SysBos},
    {"llama2-sys-strip", ChatTemplate::Llama2SysStrip},
    {"mistral-v1", ChatTemplate::MistralV1},
    {"mistral-v3", ChatTemplate::MistralV3},
    {"mistral-v3-tekken", ChatTemplate::MistralV3Tekken},
    {"mistral-v7", ChatTemplate::MistralV7},
    {"llama3", ChatTemplate::Llama3},
    {"phi3", ChatTemplate::Phi3},
    {"phi4", ChatTemplate::Phi4},
    {"falcon3", ChatTemplate::Falcon3},
    {"zephyr", ChatTemplate::Zephyr},
    {"gemma", ChatTemplate::Gemma},
    {"deepseek", ChatTemplate::Deepseek},
    {"deepseek2", ChatTemplate::Deepseek2},
    {"deepseek3", ChatTemplate::Deepseek3},
    {"vicuna", ChatTemplate::Vicuna},
    {"vicuna-orca", ChatTemplate::VicunaOrca},
    {"command-r", ChatTemplate::CommandR},
};

// Strips ASCII whitespace from both ends (llama.cpp's trim).
std::string trim(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

std::string format_llama2(ChatTemplate family, const std::vector<ChatMessage>& messages) {
  const bool system_blocks = family != ChatTemplate::Llama2;
  const bool bos_inside = family == ChatTemplate::Llama2SysBos;
  const bool strip = family == ChatTemplate::Llama2SysStrip;
  std::string out = "[INST] ";
  bool inside_turn = true;  // the first [INST] is already open (BOS comes from tokenization)
  for (const ChatMessage& m : messages) {
    const std::string content = strip ? trim(m.content) : m.content;
    if (!inside_turn) {
      inside_turn = true;
      out += bos_inside ? "<s>[INST] " : "[INST] ";
    }
    if (m.role == "system") {
      out += system_blocks ? "<<SYS>>\n" + content + "\n<</SYS>>\n\n" : content + "\n";
    } else if (m.role == "user") {
      out += content + " [/INST]";
    } else {
      out += content + "</s>";
      inside_turn = false;
    }
  }
  return out;
}

std::string format_mistral(ChatTemplate family, const std::vector<ChatMessage>& messages) {
  std::string out;
  if (family == ChatTemplate::MistralV7) {
    for (const ChatMessage& m : messages) {
      if (m.role == "system")
        out += "[SYSTEM_PROMPT] " + m.content + "[/SYSTEM_PROMPT]";
      else if (m.role == "user")
        out += "[INST] " + m.content + "[/INST]";
      else
        out += " " + m.content + "</s>";
    }
    return out;
  }
  const std::string leading = family == ChatTemplate::MistralV1 ? " " : "";
  const std::string trailing = family == ChatTemplate::MistralV3Tekken ? "" : " ";
  const bool trim_assistant = family == ChatTemplate::MistralV3;
  bool inside_turn = false;
  for (const ChatMessage& m : messages) {
    if (!inside_turn) {
      out += leading + "[INST]" + trailing;
      inside_turn = true;
    }
    if (m.role == "system") {
      out += m.content + "\n\n";
    } else if (m.role == "user") {
      out += m.content + leading + "[/INST]";
    } else {
      out += trailing + (trim_assistant ? trim(m.content) : m.content) + "</s>";
      inside_turn = false;
    }
  }
  return out;
}

std::string format_gemma(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  // Gemma has no system role: the system text is put in front of the next user turn.
  std::string out, system;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      system += trim(m.content);
      continue;
    }
    const std::string role = m.role == "assistant" ? "model" : m.role;
    out += "<start_of_turn>" + role + "\n";
    if (!system.empty() && role != "model") {
      out += system + "\n\n";
      system.clear();
    }
    out += trim(m.content) + "<end_of_turn>\n";
  }
  if (add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

}  // namespace

std::string_view chat_template_name(ChatTemplate family) {
  for (const auto& [name, value] : kNames)
    if (value == family) return name;
  return "unknown";
}

std::optional<ChatTemplate> chat_template_from_name(std::string_view name) {
  for (const auto& [known, value] : kNames)
    if (name == known) return value;
  return std::nullopt;
}

ChatTemplate detect_chat_template(std::string_view t) {
  if (auto named = chat_template_from_name(t)) return *named;
  auto has = [&](std::string_view marker) { return t.find(marker) != std::string_view::npos; };
  if (has("<|im_start|>")) return has("<|im_sep|>") ? ChatTemplate::Phi4 : ChatTemplate::ChatML;
  if (t.substr(0, 7) == "mistral" || has("[INST]")) {
    if (has("[SYSTEM_PROMPT]")) return ChatTemplate::MistralV7;
    if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
      if (has(" [INST]")) return ChatTemplate::MistralV1;
      if (has("\"[INST]\"")) return ChatTemplate::MistralV3Tekken;
      return ChatTemplate::MistralV3;
    }
    if (has("content.strip()")) return ChatTemplate::Llama2SysStrip;
    if (has("bos_token + '[INST]")) return ChatTemplate::Llama2SysBos;
    if (has("<<SYS>>")) return ChatTemplate::Llama2Sys;
    return ChatTemplate::Llama2;
  }
  if (has("<|assistant|>") && has("<|end|>")) return ChatTemplate::Phi3;
  if (has("<|assistant|>") && has("<|user|>") && has("</s>")) return ChatTemplate::Falcon3;
  if (has("<|user|>") && has("<|endoftext|>")) return ChatTemplate::Zephyr;
  if (has("<start_of_turn>")) return ChatTemplate::Gemma;
  if (has("USER: ") && has("ASSISTANT: "))
    return has("SYSTEM: ") ? ChatTemplate::VicunaOrca : ChatTemplate::Vicuna;
  if (has("### Instruction:") && has("<|EOT|>")) return ChatTemplate::Deepseek;
  if (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>")) return ChatTemplate::CommandR;
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatTemplate::Llama3;
  if (has("'Assistant: ' + message['content'] + eos_token")) return ChatTemplate::Deepseek2;
  if (has("<｜Assistant｜>") && has("<｜User｜>") && has("<｜end▁of▁sentence｜>"))
    return ChatTemplate::Deepseek3;
  return ChatTemplate::Unknown;
}

std::string format_chat(ChatTemplate family, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  const bool gen = add_generation_prompt;
  std::string out;
  switch (family) {
    case ChatTemplate::Unknown:
      fail(
          "unknown chat template: the model's tokenizer.chat_template matches no supported "
          "family (chatml, llama2, llama3, mistral, gemma, phi3, zephyr, deepseek, ...)");
    case ChatTemplate::ChatML:
      for (const ChatMessage& m : messages)
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (gen) out += "<|im_start|>assistant\n";
      return out;
    case ChatTemplate::Llama2:
    case ChatTemplate::Llama2Sys:
    case ChatTemplate::Llama2SysBos:
    case ChatTemplate::Llama2SysStrip:
      return format_llama2(family, messages);
    case ChatTemplate::MistralV1:
    case ChatTemplate::MistralV3:
    case ChatTemplate::MistralV3Tekken:
    case ChatTemplate::MistralV7:
      return format_mistral(family, messages);
    case ChatTemplate::Llama3:
      for (const ChatMessage& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) +
               "<|eot_id|>";
      if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    case ChatTemplate::Phi3:
      for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      if (gen) out += "<|assistant|>\n";
      return out;
    case ChatTemplate::Phi4:
      for (const ChatMessage& m : messages)
        out += "<|im_start|>" + m.role + "<|im_sep|>" + m.content + "<|im_end|>";
      if (gen) out += "<|im_start|>assistant<|im_sep|>";
      return out;
    case ChatTemplate::Falcon3:
      for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + "\n";
      if (gen) out += "<|assistant|>\n";
      return out;
    case ChatTemplate::Zephyr:
      for (const ChatMessage& m : messages)
        out += "<|" + m.role + "|>\n" + m.content + "<|endoftext|>\n";
      if (gen) out += "<|assistant|>\n";
      return out;
    case ChatTemplate::Gemma:
      return format_gemma(messages, gen);
    case ChatTemplate::Deepseek:
      for (const ChatMessage& m : messages) {
        if (m.role == "system")
          out += m.content;
        else if (m.role == "user")
          out += "### Instruction:\n" + m.content + "\n";
        else if (m.role == "assistant")
          out += "### Response:\n" + m.content + "\n<|EOT|>\n";
      }
      if (gen) out += "### Response:\n";
      return out;
    case ChatTemplate::Deepseek2:
      for (const ChatMessage& m : messages) {
        if (m.role == "system")
          out += m.content + "\n\n";
        else if (m.role == "user")
          out += "User: " + m.content + "\n\n";
        else if (m.role == "assistant")
          out += "Assistant: " + m.content + "<｜end▁of▁sentence｜>";
      }
      if (gen) out += "Assistant:";
      return out;
    case ChatTemplate::Deepseek3:
      for (const ChatMessage& m : messages) {
        if (m.role == "system")
          out += m.content + "\n\n";
        else if (m.role == "user")
          out += "<｜User｜>" + m.content;
        else if (m.role == "assistant")
          out += "<｜Assistant｜>" + m.content + "<｜end▁of▁sentence｜>";
      }
      if (gen) out += "<｜Assistant｜>";
      return out;
    case ChatTemplate::Vicuna:
    case ChatTemplate::VicunaOrca:
      for (const ChatMessage& m : messages) {
        if (m.role == "system")
          out += family == ChatTemplate::VicunaOrca ? "SYSTEM: " + m.content + "\n"
                                                    : m.content + "\n\n";
        else if (m.role == "user")
          out += "USER: " + m.content + "\n";
        else if (m.role == "assistant")
          out += "ASSISTANT: " + m.content + "</s>\n";
      }
      if (gen) out += "ASSISTANT:";
      return out;
    case ChatTemplate::CommandR:
      for (const ChatMessage& m : messages) {
        const char* role_token = m.role == "system" ? "<|SYSTEM_TOKEN|>"
                                 : m.role == "user" ? "<|USER_TOKEN|>"
                                                    : "<|CHATBOT_TOKEN|>";
        out += std::string("<|START_OF_TURN_TOKEN|>") + role_token + trim(m.content) +
               "<|END_OF_TURN_TOKEN|>";
      }
      if (gen) out += "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
      return out;
  }
  fail("unhandled chat template family");
}

}  // namespace toy::tokenizer
