#include <gtest/gtest.h>

#include "core/error.h"
#include "gguf/reader.h"
#include "support/fixtures.h"
#include "tokenizer/chat_template.h"

namespace toy::tokenizer {
namespace {

const std::vector<ChatMessage> kChat = {
    {"system", "You are helpful."},
    {"user", "Hi"},
    {"assistant", "Hello!"},
    {"user", "How are you?"},
};

TEST(ChatTemplate, ChatML) {
  EXPECT_EQ(format_chat(ChatTemplate::ChatML, kChat, true),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(format_chat(ChatTemplate::ChatML, {{"user", "x"}}, false),
            "<|im_start|>user\nx<|im_end|>\n");
}

TEST(ChatTemplate, Llama2) {
  EXPECT_EQ(format_chat(ChatTemplate::Llama2Sys, kChat, true),
            "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST]Hello!</s>"
            "[INST] How are you? [/INST]");
  EXPECT_EQ(format_chat(ChatTemplate::Llama2, kChat, true),
            "[INST] You are helpful.\nHi [/INST]Hello!</s>[INST] How are you? [/INST]");
  EXPECT_EQ(format_chat(ChatTemplate::Llama2SysBos, kChat, true),
            "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST]Hello!</s>"
            "<s>[INST] How are you? [/INST]");
  EXPECT_EQ(format_chat(ChatTemplate::Llama2SysStrip, {{"user", "  Hi \n"}}, true),
            "[INST] Hi [/INST]");
}

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(format_chat(ChatTemplate::Llama3, kChat, true),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Mistral) {
  EXPECT_EQ(format_chat(ChatTemplate::MistralV1, kChat, true),
            " [INST] You are helpful.\n\nHi [/INST] Hello!</s> [INST] How are you? [/INST]");
  EXPECT_EQ(format_chat(ChatTemplate::MistralV3, kChat, true),
            "[INST] You are helpful.\n\nHi[/INST] Hello!</s>[INST] How are you?[/INST]");
  EXPECT_EQ(format_chat(ChatTemplate::MistralV3Tekken, kChat, true),
            "[INST]You are helpful.\n\nHi[/INST]Hello!</s>[INST]How are you?[/INST]");
  EXPECT_EQ(format_chat(ChatTemplate::MistralV7, kChat, true),
            "[SYSTEM_PROMPT] You are helpful.[/SYSTEM_PROMPT][INST] Hi[/INST] Hello!</s>"
            "[INST] How are you?[/INST]");
}

TEST(ChatTemplate, Gemma) {
  // No system role: its text opens the first user turn; the assistant is "model".
  EXPECT_EQ(format_chat(ChatTemplate::Gemma, kChat, true),
            "<start_of_turn>user\nYou are helpful.\n\nHi<end_of_turn>\n"
            "<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, Phi3) {
  EXPECT_EQ(format_chat(ChatTemplate::Phi3, kChat, true),
            "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n"
            "Hello!<|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, Zephyr) {
  EXPECT_EQ(format_chat(ChatTemplate::Zephyr, kChat, true),
            "<|system|>\nYou are helpful.<|endoftext|>\n<|user|>\nHi<|endoftext|>\n"
            "<|assistant|>\nHello!<|endoftext|>\n<|user|>\nHow are you?<|endoftext|>\n"
            "<|assistant|>\n");
}

TEST(ChatTemplate, Deepseek) {
  EXPECT_EQ(format_chat(ChatTemplate::Deepseek, kChat, true),
            "You are helpful.### Instruction:\nHi\n### Response:\nHello!\n<|EOT|>\n"
            "### Instruction:\nHow are you?\n### Response:\n");
  EXPECT_EQ(format_chat(ChatTemplate::Deepseek2, kChat, true),
            "You are helpful.\n\nUser: Hi\n\nAssistant: Hello!<｜end▁of▁sentence｜>"
            "User: How are you?\n\nAssistant:");
  EXPECT_EQ(format_chat(ChatTemplate::Deepseek3, kChat, true),
            "You are helpful.\n\n<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜>"
            "<｜User｜>How are you?<｜Assistant｜>");
}

TEST(ChatTemplate, OtherFamilies) {
  EXPECT_EQ(format_chat(ChatTemplate::Vicuna, {{"user", "Hi"}}, true), "USER: Hi\nASSISTANT:");
  EXPECT_EQ(format_chat(ChatTemplate::Phi4, {{"user", "Hi"}}, true),
            "<|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>");
  EXPECT_EQ(format_chat(ChatTemplate::CommandR, {{"user", " Hi "}}, true),
            "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi<|END_OF_TURN_TOKEN|>"
            "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
  EXPECT_THROW(format_chat(ChatTemplate::Unknown, kChat, true), toy::Error);
}

TEST(ChatTemplate, DetectsFamiliesFromJinja) {
  EXPECT_EQ(detect_chat_template("{% for message in messages %}{{'<|im_start|>' + message['role'] "
                                 "+ '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"),
            ChatTemplate::ChatML);
  EXPECT_EQ(detect_chat_template("{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
                                 "<<SYS>>\\n{{ '[INST] ' + content }}"),
            ChatTemplate::Llama2Sys);
  EXPECT_EQ(detect_chat_template("{{ '[INST] ' + message['content'] + ' [/INST]' }}"),
            ChatTemplate::Llama2);
  EXPECT_EQ(detect_chat_template("{{ '<|start_header_id|>' + message['role'] + "
                                 "'<|end_header_id|>\\n\\n' + message['content'] }}"),
            ChatTemplate::Llama3);
  EXPECT_EQ(detect_chat_template("{{'<start_of_turn>' + role + '\\n' + message['content']}}"),
            ChatTemplate::Gemma);
  EXPECT_EQ(detect_chat_template("{{ '<|user|>\\n' + message['content'] + '<|endoftext|>' }}"),
            ChatTemplate::Zephyr);
  EXPECT_EQ(detect_chat_template("{{'### Instruction:\\n' + message['content']}}{{'<|EOT|>'}}"),
            ChatTemplate::Deepseek);
  EXPECT_EQ(detect_chat_template("[INST] [SYSTEM_PROMPT]"), ChatTemplate::MistralV7);
  EXPECT_EQ(detect_chat_template("{{ ' [INST] ' + system_message }}[INST]"),
            ChatTemplate::MistralV1);
  EXPECT_EQ(detect_chat_template("chatml"), ChatTemplate::ChatML);
  EXPECT_EQ(detect_chat_template("{{ messages }}"), ChatTemplate::Unknown);
  EXPECT_EQ(chat_template_from_name("phi3"), ChatTemplate::Phi3);
  EXPECT_EQ(chat_template_name(ChatTemplate::Llama3), "llama3");
}

TEST(ChatTemplate, DetectsPhi3FixtureTemplate) {
  auto file = gguf::File::open(testing::fixture_path("tokenizer/ggml-vocab-phi-3.gguf"));
  EXPECT_EQ(detect_chat_template(file->get_string("tokenizer.chat_template")), ChatTemplate::Phi3);
}

}  // namespace
}  // namespace toy::tokenizer
