// toy chat -m MODEL [--system TEXT] [--template NAME]: a conversation in the
// terminal. Each turn formats the whole conversation with the model's chat
// template (tokenizer.chat_template, recognised by family), feeds the model only
// the text it has not seen yet (the KV cache keeps the rest), and streams the
// reply until an end-of-generation token. When the context is full the oldest
// turns are dropped; Ctrl-C stops a reply; /help lists the commands.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/adapters.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/prompt.h"
#include "cli/sampling.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "infer/kv_cache.h"
#include "infer/sampler.h"
#include "infer/session.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"

namespace toy::cli {
namespace {

using tokenizer::ChatMessage;
using tokenizer::ChatTemplate;

// The tokens of the part of `formatted` the model has not seen yet.
std::vector<int32_t> feed_tokens(const tokenizer::Tokenizer& tok, const std::string& formatted,
                                 size_t fed_chars, bool first) {
  const std::string fresh = formatted.size() > fed_chars ? formatted.substr(fed_chars) : "";
  return tok.tokenize(fresh, {.add_special = first, .parse_special = true});
}

constexpr const char* kChatHelp =
    "commands:\n"
    "  /help          this list\n"
    "  /clear         forget the conversation (the system message stays)\n"
    "  /system TEXT   set the system message (empty: none) and start over\n"
    "  /exit, /quit   leave (as Ctrl-D does)\n"
    "  //TEXT         send a message that starts with '/'\n"
    "Ctrl-C stops the reply being written.\n";

struct ChatCommand {
  enum Kind { Help, Clear, System, Exit, Unknown } kind = Unknown;
  std::string argument;
};

ChatCommand parse_chat_command(const std::string& line) {
  const size_t space = line.find(' ');
  const std::string name = line.substr(0, space);
  ChatCommand command;
  if (space != std::string::npos) command.argument = line.substr(space + 1);
  if (name == "/help" || name == "/?") command.kind = ChatCommand::Help;
  if (name == "/clear") command.kind = ChatCommand::Clear;
  if (name == "/system") command.kind = ChatCommand::System;
  if (name == "/exit" || name == "/quit") command.kind = ChatCommand::Exit;
  return command;
}

// While alive, SIGINT sets a flag instead of ending the process (restored on destruction), so
// Ctrl-C stops the reply being generated; at the prompt it ends the program as usual.
class InterruptReply {
 public:
  InterruptReply() {
    flag_ = 0;
    struct sigaction action {};
    action.sa_handler = [](int) { flag_ = 1; };
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &previous_);
  }
  ~InterruptReply() { ::sigaction(SIGINT, &previous_, nullptr); }
  InterruptReply(const InterruptReply&) = delete;
  InterruptReply& operator=(const InterruptReply&) = delete;
  bool requested() const { return flag_ != 0; }

 private:
  static inline volatile std::sig_atomic_t flag_ = 0;
  struct sigaction previous_ {};
};

}  // namespace

int run_chat(int argc, char** argv) {
  CommandLine cl("chat", "Chat with a model in the terminal, using its chat template.");
  CLI::App& app = cl.app();
  std::string model_path, system_prompt, template_name, kv_type_name = "f16";
  int max_reply = -1;
  SamplerParams sampling;
  int64_t seed = -1;
  int threads = default_thread_count();
  int64_t n_ctx = 0;
  bool show_prompt = false, ignore_eos = false;
  app.add_option("-m,--model", model_path, "GGUF model")->required();
  app.add_option("--system", system_prompt, "system message that opens the conversation");
  app.add_option("--template", template_name,
                 "chat template family (default: detected from the model)");
  app.add_option("-n,--n-predict", max_reply, "most tokens per reply (-1: until end of turn)")
      ->check(at_least(-1))
      ->capture_default_str();
  add_sampling_options(app, sampling);
  add_ignore_eos_flag(app, ignore_eos);
  add_seed_option(app, seed);
  app.add_option("--kv-type", kv_type_name, "KV cache type: f32, f16 or q8_0")
      ->capture_default_str();
  cl.add_threads(threads);
  cl.add_context(n_ctx, "context length (default: the model's, at most 4096)");
  cl.add_gpu_layers();
  AttentionKernel attention = AttentionKernel::Auto;
  cl.add_flash_attention(attention);
  app.add_flag("--show-prompt", show_prompt, "print the text fed to the model on stderr");
  LoraOptions lora(cl);
  if (!cl.parse(argc, argv)) return 0;
  lora.check();
  sampling.seed = resolve_seed(cl, seed);

  const Model model = Model::load(model_path);
  cl.check_context(n_ctx, model.config.n_ctx_train);
  if (!model.config.has_vocab)
    fail(model_path, " has no vocabulary (tokenizer.ggml.model is none): it cannot chat; ",
         "use toy generate --tokens");
  const auto tok = tokenizer::Tokenizer::from_gguf(*model.file);
  const ChatTemplate family = choose_chat_template("chat", template_name, tok->vocab(), model_path);
  const LoraSet adapters = lora.load(model);

  ThreadPool pool(threads);
  SessionOptions options;
  options.n_ctx = n_ctx;
  options.kv_type = parse_kv_type(kv_type_name);
  options.attention = attention;
  if (!adapters.empty()) options.lora = &adapters;
  Session session(model, pool, options);
  Sampler sampler(sampling, model.config.n_vocab);
  if (ignore_eos) sampler.exclude(tok->eog_ids());

  std::vector<ChatMessage> messages;
  if (!system_prompt.empty()) messages.push_back({"system", system_prompt});
  size_t fed_chars = 0;  // how much of the formatted conversation the model has seen
  NonFiniteWatch watch("chat");
  auto start_over = [&] {
    messages.clear();
    if (!system_prompt.empty()) messages.push_back({"system", system_prompt});
    session.reset();
    fed_chars = 0;
  };

  std::fprintf(stderr,
               "toy chat: %s template; type a message, /help for commands, Ctrl-D to quit\n",
               std::string(tokenizer::chat_template_name(family)).c_str());
  std::string line;
  while (true) {
    std::fputs("\n> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line[0] == '/' && line.compare(0, 2, "//") != 0) {
      const ChatCommand command = parse_chat_command(line);
      if (command.kind == ChatCommand::Exit) break;
      if (command.kind == ChatCommand::Help) {
        std::fputs(kChatHelp, stdout);
      } else if (command.kind == ChatCommand::Clear) {
        start_over();
        std::fprintf(stderr, "toy chat: conversation cleared\n");
      } else if (command.kind == ChatCommand::System) {
        // The system message opens the formatted conversation: the cache must start over.
        system_prompt = command.argument;
        start_over();
        std::fprintf(stderr, "toy chat: %s; conversation cleared\n",
                     system_prompt.empty() ? "no system message" : "new system message");
      } else {
        std::fprintf(stderr, "toy chat: unknown command '%s'; /help lists them\n",
                     printable(line).c_str());
      }
      continue;
    }
    messages.push_back({"user", line[0] == '/' ? line.substr(1) : line});
    std::string formatted = tokenizer::format_chat(family, messages, true);
    std::vector<int32_t> ids = feed_tokens(*tok, formatted, fed_chars, session.n_past() == 0);
    if (session.n_past() + static_cast<int64_t>(ids.size()) >= session.n_ctx()) {
      // A message that cannot fit even alone is not sent, and the conversation is kept.
      std::vector<ChatMessage> alone;
      if (!system_prompt.empty()) alone.push_back({"system", system_prompt});
      alone.push_back(messages.back());
      const size_t alone_tokens =
          feed_tokens(*tok, tokenizer::format_chat(family, alone, true), 0, true).size();
      if (static_cast<int64_t>(alone_tokens) >= session.n_ctx()) {
        std::fprintf(stderr,
                     "toy chat: the message (%zu tokens with the template) does not fit the "
                     "context of %lld tokens; not sent (raise it with -c)\n",
                     alone_tokens, static_cast<long long>(session.n_ctx()));
        messages.pop_back();
        continue;
      }
      // Drop the oldest turns (a user message and its reply; the system message stays) until
      // the conversation, fed again from the start, fits; the cache is recomputed once.
      const size_t first = system_prompt.empty() ? 0 : 1;
      int dropped = 0;
      while (true) {
        formatted = tokenizer::format_chat(family, messages, true);
        ids = feed_tokens(*tok, formatted, 0, true);
        if (static_cast<int64_t>(ids.size()) < session.n_ctx()) break;
        const size_t turn = messages[first + 1].role == "assistant" ? 2 : 1;
        messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(first),
                       messages.begin() + static_cast<std::ptrdiff_t>(first + turn));
        ++dropped;
      }
      std::fprintf(stderr,
                   "toy chat: context full (%lld tokens); earlier turns are forgotten (dropped "
                   "the oldest %d)\n",
                   static_cast<long long>(session.n_ctx()), dropped);
      session.reset();
      fed_chars = 0;
    }
    if (show_prompt) std::fprintf(stderr, "[prompt] %s\n", formatted.substr(fed_chars).c_str());
    for (int32_t id : ids) sampler.accept(id);
    std::span<const float> logits = session.prefill(ids);

    tokenizer::StreamingDetokenizer stream(*tok);
    std::string reply;
    int n_reply = 0;
    Timer timer;
    const InterruptReply interrupt;  // Ctrl-C ends this reply, not the program
    while (max_reply < 0 || n_reply < max_reply) {
      if (interrupt.requested()) {
        std::fprintf(stderr, "\ntoy chat: reply interrupted (Ctrl-C); Ctrl-D quits\n");
        break;
      }
      if (!watch.ok(logits, session.n_past())) break;
      const int32_t id = sampler.sample(logits);
      if (tok->is_eog(id)) break;
      sampler.accept(id);
      ++n_reply;
      const std::string text = stream.push(id);
      reply += text;
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      if (session.n_past() + 1 >= session.n_ctx()) break;  // the next turn starts over
      logits = session.decode(id);
    }
    const std::string rest = stream.finish();
    reply += rest;
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
    std::fprintf(stderr, "[%d tokens, %.1f tokens/s]\n", n_reply,
                 n_reply / std::max(timer.seconds(), 1e-9));

    // The model has seen the prompt and its reply; the template's end-of-turn text
    // (not generated: sampling stopped at the end-of-generation token) is fed
    // with the next message. If the template rewrites the reply (e.g. trims it),
    // fall back to skipping the whole formatted turn, as llama.cpp's simple-chat.
    messages.push_back({"assistant", reply});
    const std::string with_reply = tokenizer::format_chat(family, messages, false);
    if (with_reply.compare(0, formatted.size() + reply.size(), formatted + reply) == 0)
      fed_chars = formatted.size() + reply.size();
    else
      fed_chars = with_reply.size();
  }
  return 0;
}

}  // namespace toy::cli
