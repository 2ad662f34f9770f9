// toy logits: the logits a model gives after each token of a list, as raw
// little-endian float32 (T × n_vocab, row t = after tokens[0..t]) — the format
// of the fixtures' reference logits, for comparing against llama.cpp.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/adapters.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "infer/kv_cache.h"
#include "infer/session.h"
#include "infer/token_list.h"
#include "model/model.h"
#include "model/taps.h"

namespace toy::cli {

int run_logits(int argc, char** argv) {
  CommandLine cl(
      "logits",
      "Write the logits after each token as little-endian float32, T x n_vocab.\n"
      "Default: all positions in one prefill batch through an f32 KV cache, exact arithmetic\n"
      "(dequantized weight blocks, f32 accumulation). The cache defaults to f32 here (not f16\n"
      "as in generate) because an f16 cache moves logits by 2-6x the fixture tolerance.");
  CLI::App& app = cl.app();
  std::string model_path, tokens_text, out_path, kv_type_name = "f32", taps_list, taps_out;
  bool decode = false, exact = false, fast = false;
  int threads = default_thread_count();
  int64_t n_ctx = 0;
  app.add_option("-m,--model", model_path, "GGUF model")->required();
  app.add_option("--tokens", tokens_text, "token ids, comma- or space-separated, e.g. 175,132,281")
      ->required();
  app.add_option("-o,--output", out_path, "output file (T x n_vocab float32, written atomically)")
      ->required();
  app.add_flag("--decode", decode, "feed the tokens one at a time through the KV cache");
  app.add_option("--kv-type", kv_type_name, "KV cache type: f32, f16 or q8_0")
      ->capture_default_str();
  auto* exact_flag = app.add_flag("--exact", exact, "exact arithmetic (the default)");
  app.add_flag("--fast", fast,
               "fast arithmetic (activations rounded like llama.cpp, SIMD dot products)")
      ->excludes(exact_flag);
  cl.add_threads(threads);
  cl.add_context(n_ctx, "context length (default: the model's, at most 4096)");
  cl.add_gpu_layers();
  AttentionKernel attention = AttentionKernel::Auto;
  cl.add_flash_attention(attention);
  auto* tap_opt = app.add_option(
      "--tap", taps_list,
      "activation statistics over all the tokens (mean, rms, max |x|, non-finite count): "
      "comma-separated points of every layer or of one (blk.N.<point>): attn_norm, attn_out, "
      "resid_mid, ffn_norm, ffn_out, resid_post");
  auto* tap_out_opt =
      app.add_option("--tap-out", taps_out, "where --tap writes its JSON lines (one per tap)");
  tap_opt->needs(tap_out_opt);
  tap_out_opt->needs(tap_opt);
  LoraOptions lora(cl);
  if (!cl.parse(argc, argv)) return 0;
  lora.check();
  std::optional<LayerTaps> taps;
  if (!taps_list.empty()) taps.emplace(taps_list);

  const std::vector<int32_t> tokens = parse_token_list(tokens_text);
  std::vector<NamedPath> inputs = lora.inputs();
  inputs.push_back({"-m", model_path});
  check_output({"-o", out_path}, inputs);
  if (taps) {
    std::vector<NamedPath> all = inputs;
    all.push_back({"-o", out_path});
    check_output({"--tap-out", taps_out}, all);
    check_distinct_outputs({{"-o", out_path}, {"--tap-out", taps_out}});
  }
  const Model model = Model::load(model_path);
  if (taps) taps->check_layers(model.config.n_layer);
  cl.check_context(n_ctx, model.config.n_ctx_train);
  const LoraSet adapters = lora.load(model);
  ThreadPool pool(threads);
  SessionOptions options;
  options.n_ctx = n_ctx;
  options.kv_type = parse_kv_type(kv_type_name);
  options.attention = attention;
  options.mode = fast ? MatmulMode::Fast : MatmulMode::Exact;
  if (!adapters.empty()) options.lora = &adapters;
  Session session(model, pool, options);
  if (taps) session.set_taps(&*taps);

  const size_t n_vocab = static_cast<size_t>(model.config.n_vocab);
  std::vector<float> logits(tokens.size() * n_vocab);
  if (decode) {
    for (size_t t = 0; t < tokens.size(); ++t) {
      const auto row = session.decode(tokens[t]);
      std::copy(row.begin(), row.end(), logits.begin() + static_cast<std::ptrdiff_t>(t * n_vocab));
    }
  } else {
    session.prefill_all(tokens, logits.data());
  }

  write_output_file(out_path, logits.data(), logits.size() * sizeof(float));
  if (taps) {
    std::string lines;
    for (const TapStats& t : taps->stats())
      lines +=
          nlohmann::json{{"tap", t.name},        {"mean", t.mean()},         {"rms", t.rms()},
                         {"max_abs", t.max_abs}, {"nonfinite", t.nonfinite}, {"count", t.count}}
              .dump() +
          "\n";
    write_output_file(taps_out, lines.data(), lines.size());
  }
  return 0;
}

}  // namespace toy::cli
