// toy perplexity: a model's perplexity on a text file, with llama-perplexity's definition
// (infer/perplexity.h) and output: the running estimate after each chunk, "[1]x,[2]y,...",
// then "Final estimate: PPL = x +/- y".
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/adapters.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "infer/kv_cache.h"
#include "infer/perplexity.h"
#include "infer/session.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace toy::cli {

int run_perplexity(int argc, char** argv) {
  CommandLine cl("perplexity",
                 "Perplexity of a model on a text file, as llama-perplexity computes it: the text\n"
                 "is cut into chunks of -c tokens (first token of each set to BOS when the model\n"
                 "adds one) and the second half of every chunk is scored.");
  CLI::App& app = cl.app();
  std::string model_path, text_path, kv_type_name = "f16";
  int64_t n_ctx = 0, chunks = -1, n_batch = 512;
  bool exact = false;
  int threads = default_thread_count();
  app.add_option("-m,--model", model_path, "GGUF model")->required();
  app.add_option("-f,--file", text_path, "text file to score (- : standard input)")->required();
  cl.add_context(n_ctx, "tokens per chunk (default: 512, at most the model's context)");
  app.add_option("--chunks", chunks, "score at most this many chunks (-1: all)")
      ->check(at_least(-1))
      ->capture_default_str();
  app.add_option("-b,--batch-size", n_batch, "positions per forward pass")
      ->check(at_least(1))
      ->capture_default_str();
  app.add_option("--kv-type", kv_type_name, "KV cache type: f32, f16 or q8_0")
      ->capture_default_str();
  app.add_flag("--exact", exact, "exact arithmetic instead of the fast kernels");
  cl.add_threads(threads);
  cl.add_gpu_layers();
  AttentionKernel attention = AttentionKernel::Auto;
  cl.add_flash_attention(attention);
  LoraOptions lora(cl);
  if (!cl.parse(argc, argv)) return 0;
  lora.check();
  const DType kv_type = parse_kv_type(kv_type_name);
  const std::string text = read_input_text({"-f", text_path});

  const Model model = Model::load(model_path);
  if (!model.config.has_vocab)
    fail(model_path, " has no vocabulary (tokenizer.ggml.model is none): perplexity needs ",
         "to tokenize the text");
  // llama-perplexity's default is 512; a model trained on less gets its own context.
  if (n_ctx == 0)
    n_ctx = model.config.n_ctx_train > 0 ? std::min<int64_t>(512, model.config.n_ctx_train) : 512;
  cl.check_context(n_ctx, model.config.n_ctx_train);
  const LoraSet adapters = lora.load(model);
  const auto tok = tokenizer::Tokenizer::from_gguf(*model.file);
  // Tokenized once, BOS as the vocabulary says and control-token text kept as text (llama.cpp's
  // common_tokenize(ctx, text, add_special = true)).
  const std::vector<int32_t> tokens = tok->tokenize(text, {.add_special = true});

  ThreadPool pool(threads);
  SessionOptions options;
  options.n_ctx = n_ctx;
  options.kv_type = kv_type;
  options.mode = exact ? MatmulMode::Exact : MatmulMode::Fast;
  options.max_batch = std::min(n_batch, n_ctx);
  options.attention = attention;
  if (!adapters.empty()) options.lora = &adapters;
  Session session(model, pool, options);

  PerplexityOptions ppl_options;
  ppl_options.n_ctx = n_ctx;
  ppl_options.chunks = chunks;
  ppl_options.n_batch = options.max_batch;
  ppl_options.bos = tok->vocab().add_bos() ? tok->vocab().bos() : -1;
  std::fprintf(stderr, "toy perplexity: %zu tokens, %lld chunks of %lld (second half scored)\n",
               tokens.size(),
               static_cast<long long>(std::min<int64_t>(
                   chunks < 0 ? INT64_MAX : chunks, static_cast<int64_t>(tokens.size()) / n_ctx)),
               static_cast<long long>(n_ctx));
  Timer timer;
  const PerplexityResult result =
      perplexity(session, tokens, ppl_options, [](int64_t chunk, double running) {
        std::printf("[%lld]%.4f,", static_cast<long long>(chunk), running);
        std::fflush(stdout);
      });
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", result.ppl, result.uncertainty);
  std::fprintf(stderr, "toy perplexity: %lld tokens scored in %.2f s\n",
               static_cast<long long>(result.n_scored), timer.seconds());
  return 0;
}

}  // namespace toy::cli
