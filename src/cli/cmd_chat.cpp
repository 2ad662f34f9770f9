// toy chat -m MODEL [--system TEXT] [--template NAME]: a conversation in the
// terminal. Each turn formats the whole conversation with the model's chat
// template (tokenizer.chat_template, recognised by family), feeds the model only
// the text it has not seen yet (the KV cache keeps the rest), and streams the
// reply until an end-of-generation token.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/commands.h"
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

ChatTemplate choose_template(const std::string& requested, const tokenizer::Vocab& vocab,
                             const std::string& model_path) {
  if (!requested.empty()) {
    const ChatTemplate family = tokenizer::detect_chat_template(requested);
    if (family == ChatTemplate::Unknown)
      fail("--template '", requested,
           "' is not a known chat template family (e.g. chatml, llama2, ",
           "llama3, mistral-v3, gemma, phi3, zephyr, deepseek)");
    return family;
  }
  if (vocab.chat_template().empty()) {
    std::fprintf(stderr, "toy chat: %s has no tokenizer.chat_template; using chatml\n",
                 model_path.c_str());
    return ChatTemplate::ChatML;
  }
  const ChatTemplate family = tokenizer::detect_chat_template(vocab.chat_template());
  if (family == ChatTemplate::Unknown)
    fail(model_path, ": tokenizer.chat_template is not a supported family; choose one with ",
         "--template (chatml, llama2, llama3, mistral-v3, gemma, phi3, zephyr, deepseek, ...)");
  return family;
}

// The tokens of the part of `formatted` the model has not seen yet.
std::vector<int32_t> feed_tokens(const tokenizer::Tokenizer& tok, const std::string& formatted,
                                 size_t fed_chars, bool first) {
  const std::string fresh = formatted.size() > fed_chars ? formatted.substr(fed_chars) : "";
  return tok.tokenize(fresh, {.add_special = first, .parse_special = true});
}

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
  bool show_prompt = false;
  app.add_option("-m,--model", model_path, "GGUF model")->required();
  app.add_option("--system", system_prompt, "system message that opens the conversation");
  app.add_option("--template", template_name,
                 "chat template family (default: detected from the model)");
  app.add_option("-n,--n-predict", max_reply, "most tokens per reply (-1: until end of turn)")
      ->check(at_least(-1))
      ->capture_default_str();
  add_sampling_options(app, sampling);
  add_seed_option(app, seed);
  app.add_option("--kv-type", kv_type_name, "KV cache type: f32, f16 or q8_0")
      ->capture_default_str();
  cl.add_threads(threads);
  cl.add_context(n_ctx, "context length (default: the model's, at most 4096)");
  cl.add_gpu_layers();
  app.add_flag("--show-prompt", show_prompt, "print the text fed to the model on stderr");
  if (!cl.parse(argc, argv)) return 0;
  sampling.seed = resolve_seed(cl, seed);

  const Model model = Model::load(model_path);
  cl.check_context(n_ctx, model.config.n_ctx_train);
  if (!model.config.has_vocab)
    fail(model_path, " has no vocabulary (tokenizer.ggml.model is none): it cannot chat; ",
         "use toy generate --tokens");
  const auto tok = tokenizer::Tokenizer::from_gguf(*model.file);
  const ChatTemplate family = choose_template(template_name, tok->vocab(), model_path);

  ThreadPool pool(threads);
  SessionOptions options;
  options.n_ctx = n_ctx;
  options.kv_type = parse_kv_type(kv_type_name);
  Session session(model, pool, options);
  Sampler sampler(sampling, model.config.n_vocab);

  std::vector<ChatMessage> messages;
  if (!system_prompt.empty()) messages.push_back({"system", system_prompt});
  size_t fed_chars = 0;  // how much of the formatted conversation the model has seen

  std::fprintf(stderr, "toy chat: %s template; type a message, Ctrl-D to quit\n",
               std::string(tokenizer::chat_template_name(family)).c_str());
  std::string line;
  while (true) {
    std::fputs("\n> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    messages.push_back({"user", line});
    std::string formatted = tokenizer::format_chat(family, messages, true);
    std::vector<int32_t> ids = feed_tokens(*tok, formatted, fed_chars, session.n_past() == 0);
    if (session.n_past() + static_cast<int64_t>(ids.size()) >= session.n_ctx()) {
      // Out of room: start over with the system message and the new message only.
      std::fprintf(stderr, "toy chat: context full (%lld tokens); earlier turns are forgotten\n",
                   static_cast<long long>(session.n_ctx()));
      std::vector<ChatMessage> kept;
      if (!system_prompt.empty()) kept.push_back({"system", system_prompt});
      kept.push_back(messages.back());
      messages.swap(kept);
      session.reset();
      fed_chars = 0;
      formatted = tokenizer::format_chat(family, messages, true);
      ids = feed_tokens(*tok, formatted, fed_chars, true);
      if (static_cast<int64_t>(ids.size()) >= session.n_ctx())
        fail("the message (", ids.size(), " tokens with the template) does not fit the context of ",
             session.n_ctx(), " tokens; raise it with -c");
    }
    if (show_prompt) std::fprintf(stderr, "[prompt] %s\n", formatted.substr(fed_chars).c_str());
    for (int32_t id : ids) sampler.accept(id);
    std::span<const float> logits = session.prefill(ids);

    tokenizer::StreamingDetokenizer stream(*tok);
    std::string reply;
    int n_reply = 0;
    Timer timer;
    while (max_reply < 0 || n_reply < max_reply) {
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
