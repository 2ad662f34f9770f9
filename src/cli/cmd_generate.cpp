// toy generate: continue a prompt (text, or token ids for models without a
// vocabulary), streaming the text — or, with --print-ids, one line of the
// generated ids — and report prompt and generation speed on stderr.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>
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
#include "gguf/reader.h"
#include "infer/kv_cache.h"
#include "infer/sampler.h"
#include "infer/session.h"
#include "infer/token_list.h"
#include "model/model.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"

namespace toy::cli {

int run_generate(int argc, char** argv) {
  CommandLine cl("generate",
                 "Generate a continuation of a prompt (llama.cpp's sampler chain and defaults).");
  CLI::App& app = cl.app();
  std::string model_path, tokens_text, kv_type_name = "f16";
  int n_predict = 128;
  SamplerParams sampling;
  int64_t seed = -1;
  bool print_ids = false, exact = false;
  bool no_context_shift = false, ignore_eos = false;
  int threads = default_thread_count();
  int64_t n_ctx = 0;
  app.add_option("-m,--model", model_path, "GGUF model")->required();
  PromptOptions prompt_options(cl);
  auto* tokens_opt =
      app.add_option("--tokens", tokens_text, "prompt as token ids, comma- or space-separated");
  tokens_opt->excludes(prompt_options.prompt_option())->excludes(prompt_options.file_option());
  add_sampling_options(app, sampling);
  add_ignore_eos_flag(app, ignore_eos);
  app.add_option("-n,--n-predict", n_predict,
                 "tokens to generate (-1: until end of text or a full context)")
      ->check(at_least(-1))
      ->capture_default_str();
  add_seed_option(app, seed);
  app.add_flag("--no-context-shift", no_context_shift,
               "stop when the context is full (default: keep the newest half and go on)");
  app.add_flag("--print-ids", print_ids, "print the generated token ids instead of text");
  app.add_option("--kv-type", kv_type_name, "KV cache type: f32, f16 or q8_0")
      ->capture_default_str();
  app.add_flag("--exact", exact, "exact arithmetic instead of the fast kernels");
  cl.add_threads(threads);
  cl.add_context(n_ctx, "context length (default: the model's, at most 4096)");
  cl.add_gpu_layers();
  AttentionKernel attention = AttentionKernel::Auto;
  cl.add_flash_attention(attention);
  LoraOptions lora(cl);
  if (!cl.parse(argc, argv)) return 0;
  lora.check();
  if (!prompt_options.given() && tokens_opt->count() == 0)
    usage_error("give a prompt with -p TEXT, -f FILE or --tokens IDS");
  sampling.seed = resolve_seed(cl, seed);
  const std::string prompt = prompt_options.given() ? prompt_options.read() : std::string();

  const Model model = Model::load(model_path);
  cl.check_context(n_ctx, model.config.n_ctx_train);
  const LoraSet adapters = lora.load(model);
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (model.config.has_vocab) tok = tokenizer::Tokenizer::from_gguf(*model.file);

  std::vector<int32_t> prompt_ids;
  if (tokens_opt->count()) {
    prompt_ids = parse_token_list(tokens_text);
  } else {
    if (!tok)
      fail(model_path, " has no vocabulary (tokenizer.ggml.model is none): give the prompt as ",
           "token ids with --tokens");
    prompt_ids = tok->tokenize(prompt, {.add_special = true, .parse_special = true});
    if (prompt_ids.empty()) fail("the prompt tokenizes to nothing");
  }

  ThreadPool pool(threads);
  SessionOptions options;
  options.n_ctx = n_ctx;
  options.kv_type = parse_kv_type(kv_type_name);
  options.attention = attention;
  options.mode = exact ? MatmulMode::Exact : MatmulMode::Fast;
  if (!adapters.empty()) options.lora = &adapters;
  Session session(model, pool, options);
  Sampler sampler(sampling, model.config.n_vocab);
  if (ignore_eos && tok) sampler.exclude(tok->eog_ids());
  for (int32_t id : prompt_ids) sampler.accept(id);

  Timer prompt_timer;
  std::span<const float> logits = session.prefill(prompt_ids);
  const double prompt_seconds = prompt_timer.seconds();

  // Like llama-cli, the text output starts with the prompt; generated text is
  // streamed so a character split across tokens is printed once it is complete.
  std::optional<tokenizer::StreamingDetokenizer> stream;
  if (!print_ids && tok) {
    stream.emplace(*tok);
    if (prompt_options.given()) std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  }

  // -1: until the end of text, or until the context is full (no shifting then).
  const bool unlimited = n_predict < 0;
  if (unlimited) no_context_shift = true;
  std::vector<int32_t> generated;
  generated.reserve(static_cast<size_t>(unlimited ? session.n_ctx() : n_predict));
  NonFiniteWatch watch("generate");
  Timer gen_timer;
  while (unlimited || static_cast<int>(generated.size()) < n_predict) {
    if (!watch.ok(logits, session.n_past())) break;
    const int32_t id = sampler.sample(logits);
    if (tok && tok->is_eog(id)) break;
    generated.push_back(id);
    sampler.accept(id);
    if (stream) {
      const std::string text = stream->push(id);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    if (!unlimited && static_cast<int>(generated.size()) == n_predict) break;
    if (session.n_past() >= session.n_ctx()) {
      if (no_context_shift || session.n_ctx() < 2) {
        std::fprintf(stderr, "\ntoy generate: context full (%lld tokens), stopping\n",
                     static_cast<long long>(session.n_ctx()));
        break;
      }
      // Context shift: start over from the newest half of the text so far (prompt +
      // generated), recomputing its cache, like llama-cli's default context shift.
      std::vector<int32_t> history = prompt_ids;
      history.insert(history.end(), generated.begin(), generated.end());
      const size_t keep = static_cast<size_t>(session.n_ctx() / 2);
      const std::vector<int32_t> tail(history.end() - static_cast<std::ptrdiff_t>(keep),
                                      history.end());
      session.reset();
      logits = session.prefill(tail);
      continue;
    }
    logits = session.decode(id);
  }
  const double gen_seconds = gen_timer.seconds();
  if (stream) {
    const std::string rest = stream->finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
  }

  if (print_ids || !tok) {
    for (size_t i = 0; i < generated.size(); ++i) std::printf(i ? " %d" : "%d", generated[i]);
  }
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr, "prompt: %zu tokens in %.3f s (%.1f tokens/s)\n", prompt_ids.size(),
               prompt_seconds, prompt_ids.size() / std::max(prompt_seconds, 1e-9));
  std::fprintf(stderr, "generation: %zu tokens in %.3f s (%.1f tokens/s)\n", generated.size(),
               gen_seconds, generated.size() / std::max(gen_seconds, 1e-9));
  return watch.failed() ? 1 : 0;
}

}  // namespace toy::cli
