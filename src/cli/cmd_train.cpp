// toy train -o OUT.gguf --data FILE.txt [shape, optimizer and run flags]: trains
// a dense llama-family model from scratch on a text file (nanoGPT / llm.c style)
// and writes it as a standard GGUF that toy and llama.cpp load. --data may also
// be JSON lines of fine-tuning examples (train/sft_data.h), optionally --pack'ed.
//
// `--preset shakespeare-char` fills in the configuration of the PyTorch
// reference run (../shared/bench/REFERENCE.md); explicit flags override it.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/donor_embeddings.h"
#include "cli/files.h"
#include "cli/training.h"
#include "core/error.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/dataset.h"
#include "train/export.h"
#include "train/params.h"
#include "train/scratch_config.h"
#include "train/sft_data.h"
#include "train/vocab.h"

namespace toy::cli {
namespace {

struct Settings {
  std::string out_path, vocab = "byte", vocab_from, donor_path, preset, out_type = "f32";
  train::ScratchShape shape;
  bool tied = false;
  double init_scale = 1.0;
  TrainingFlags run;
};

// Sets `var` to the preset's `value` unless the flag was given explicitly.
template <typename T, typename V>
void preset_value(const CLI::Option* option, T& var, V value) {
  if (option->count() == 0) var = static_cast<T>(value);
}

}  // namespace

int run_train(int argc, char** argv) {
  Settings s;
  CommandLine cl("train", "Train a llama-family model from scratch on a text file; writes a GGUF.");
  CLI::App& app = cl.app();
  const auto positive = at_least(1);
  TrainingFlags& r = s.run;
  app.add_option("-o,--output", s.out_path, "output GGUF (written atomically)")->required();
  add_training_flags(cl, s.run);
  auto* preset_opt = app.add_option("--preset", s.preset, "shakespeare-char");
  auto* vocab_opt = app.add_option("--vocab", s.vocab, "byte or chars")->capture_default_str();
  auto* vocab_from_opt =
      app.add_option("--vocab-from", s.vocab_from, "use the vocabulary of this GGUF model");
  auto* donor_opt = app.add_option(
      "--donor-embeddings", s.donor_path,
      "projection lens: this GGUF's vocabulary and frozen token embeddings, mapped into --n-embd "
      "by a trained lens.proj.weight (folded into token_embd when written)");
  auto* arch_opt = app.add_option("--arch", s.shape.arch, "llama, qwen2, qwen3 or gemma2")
                       ->capture_default_str();
  auto* embd_opt = app.add_option("--n-embd", s.shape.n_embd, "embedding width")->check(positive);
  auto* layer_opt = app.add_option("--n-layer", s.shape.n_layer, "layers")->check(positive);
  auto* head_opt = app.add_option("--n-head", s.shape.n_head, "attention heads")->check(positive);
  auto* head_kv_opt = app.add_option("--n-head-kv", s.shape.n_head_kv, "KV heads (default n-head)")
                          ->check(positive);
  app.add_option("--head-dim", s.shape.head_dim, "head width (default n-embd / n-head)")
      ->check(positive);
  auto* ff_opt = app.add_option("--n-ff", s.shape.n_ff, "FFN width")->check(positive);
  auto* ctx_opt = cl.add_context(s.shape.n_ctx, "context length T", ",--ctx")->check(positive);
  app.add_option("--rope-base", s.shape.rope_base, "RoPE base")
      ->check(greater_than(0))
      ->capture_default_str();
  app.add_option("--layer-pattern", s.shape.layer_pattern,
                 "per-layer kind, repeated over the layers: attn,gdn,gdn,gdn (gdn: a gated "
                 "delta-net layer; default all attention)");
  app.add_option("--rms-eps", s.shape.rms_eps, "RMSNorm epsilon")
      ->check(greater_than(0))
      ->capture_default_str();
  auto* tied_opt = app.add_flag("--tied", s.tied, "tie the output projection to the embeddings");
  donor_opt->excludes(vocab_from_opt)->excludes(vocab_opt)->excludes(tied_opt);
  app.add_option("--init-scale", s.init_scale, "linear weights ~ N(0, scale/sqrt(fan_in))")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--out-type", s.out_type, "f32, f16, bf16 or q8_0")->capture_default_str();
  if (!cl.parse(argc, argv)) return 0;

  if (preset_opt->count() > 0) {
    if (s.preset != "shakespeare-char")
      fail("unknown --preset '", s.preset, "'; the presets are: shakespeare-char");
    // The PyTorch reference configuration (REFERENCE.md), with nanoGPT's
    // shakespeare_char schedule (100 warm-up steps, cosine to lr/10).
    preset_value(vocab_opt, s.vocab, "chars");
    preset_value(r.val_opt, r.val_fraction, 0.1);
    preset_value(arch_opt, s.shape.arch, "llama");
    preset_value(embd_opt, s.shape.n_embd, 128);
    preset_value(layer_opt, s.shape.n_layer, 4);
    preset_value(head_opt, s.shape.n_head, 4);
    preset_value(head_kv_opt, s.shape.n_head_kv, 4);
    preset_value(ff_opt, s.shape.n_ff, 384);
    preset_value(ctx_opt, s.shape.n_ctx, 64);
    preset_value(r.batch_opt, r.batch, 12);
    preset_value(r.steps_opt, r.steps, 2000);
    preset_value(r.lr_opt, r.lr, 1e-3);
    preset_value(r.min_lr_opt, r.min_lr, 1e-4);
    preset_value(r.schedule_opt, r.schedule, "cosine");
    preset_value(r.warmup_opt, r.warmup, 100);
    preset_value(r.wd_opt, r.weight_decay, 0.1);
    preset_value(r.beta1_opt, r.beta1, 0.9);
    preset_value(r.beta2_opt, r.beta2, 0.99);
    preset_value(r.clip_opt, r.grad_clip, 1.0);
    preset_value(r.eval_opt, r.eval_every, 250);
    preset_value(tied_opt, s.tied, false);
  }
  auto require = [](const CLI::Option* option, int64_t value, const char* flag) {
    if (option->count() == 0 && value == 0) usage_error("missing ", flag, " (or use --preset)");
  };
  require(embd_opt, s.shape.n_embd, "--n-embd");
  require(layer_opt, s.shape.n_layer, "--n-layer");
  require(head_opt, s.shape.n_head, "--n-head");
  require(ff_opt, s.shape.n_ff, "--n-ff");
  require(ctx_opt, s.shape.n_ctx, "-c/--ctx-size");
  // A value the float fields round to zero (--rms-eps 1e-50) is as bad as zero.
  if (!(s.shape.rms_eps > 0.0f))
    usage_error("--rms-eps: must be in (0, inf), got ", s.shape.rms_eps);
  const DType out_type = train::parse_out_type(s.out_type);
  // Everything that can make the end of the run fail is checked before it starts.
  check_training_flags(r, {"-o", s.out_path},
                       {{"--vocab-from", s.vocab_from}, {"--donor-embeddings", s.donor_path}});

  // The vocabulary the output file will carry, and the data tokenized by exactly
  // that vocabulary's tokenizer (what `toy tokenize` on the output gives).
  train::DataSource source = read_data_file(r);
  std::shared_ptr<const tokenizer::Tokenizer> tok;
  std::function<void(gguf::Writer&)> tokenizer_metadata;
  std::shared_ptr<const gguf::File> vocab_file;
  std::unique_ptr<train::TrainVocab> vocab;
  std::optional<DonorEmbeddings> donor;  // --donor-embeddings: its table stays mapped
  if (!s.donor_path.empty()) {
    donor.emplace(load_donor_embeddings(s.donor_path));
    tok = donor->tokenizer;
    tokenizer_metadata = [&](gguf::Writer& writer) { donor->write_tokenizer(writer); };
  } else if (!s.vocab_from.empty()) {
    vocab_file = gguf::File::open(s.vocab_from);
    tok = tokenizer::Tokenizer::from_gguf(*vocab_file);
    if (!tok->has_text())
      fail("--vocab-from ", s.vocab_from, ": the model has no vocabulary (tokenizer.ggml.model)");
    tokenizer_metadata = [&](gguf::Writer& writer) {
      train::copy_tokenizer_metadata(*vocab_file, writer);
    };
  } else {
    if (s.vocab != "byte" && s.vocab != "chars")
      fail("--vocab must be byte or chars, got '", s.vocab, "'");
    vocab = std::make_unique<train::TrainVocab>(
        s.vocab == "chars" ? train::TrainVocab::chars(source.vocab_corpus())
                           : train::TrainVocab::bytes());
    tok = vocab->tokenizer();
    tokenizer_metadata = [&](gguf::Writer& writer) { vocab->write_metadata(writer); };
  }
  s.shape.n_vocab = tok->n_vocab();
  const bool chat = std::any_of(source.records.begin(), source.records.end(), [](const auto& rec) {
    return rec.kind == train::SftRecord::Kind::Messages ||
           rec.kind == train::SftRecord::Kind::ChatPromptCompletion;
  });
  if (chat && tok->vocab().chat_template().empty() && !r.quiet)
    note("train",
         "the vocabulary has no tokenizer.chat_template: conversations are rendered as ChatML, "
         "which `toy chat` and llama.cpp use for such a model");
  const TrainingData data =
      tokenize_training_data(r, std::move(source), *tok, s.shape.n_ctx, "train");

  ModelConfig config = train::scratch_config(s.shape);
  const auto include = [&](const TensorSpec& spec) {
    if (spec.name == "output.weight") return !s.tied;
    return spec.name.ends_with(".bias") && config.arch().qkv_bias;
  };
  std::unique_ptr<train::ParamStore<float>> store_owner;
  Weights donor_table;  // --donor-embeddings: the frozen token_embd the lens reads
  if (donor) {
    config.n_embd_lens = donor->width();
    donor_table.layers.resize(static_cast<size_t>(config.n_layer));
    donor_table.token_embd = donor->table();
    std::vector<TensorSpec> specs;
    for (TensorSpec& spec : train::model_specs(config, include))
      if (spec.name != "token_embd.weight") specs.push_back(std::move(spec));
    store_owner = std::make_unique<train::ParamStore<float>>(config, specs, &donor_table);
  } else {
    store_owner = std::make_unique<train::ParamStore<float>>(config, include);
  }
  train::ParamStore<float>& store = *store_owner;
  train::init_random(store, r.seed, s.init_scale);

  if (!r.quiet) {
    std::fprintf(
        stderr,
        "train: %s, %lld params, vocab %lld, %lld layers, n_embd %lld, %lld heads (%lld kv), "
        "n_ff %lld, ctx %lld, batch %lld x %lld accum\n",
        config.arch().name.data(), static_cast<long long>(store.total()),
        static_cast<long long>(config.n_vocab), static_cast<long long>(config.n_layer),
        static_cast<long long>(config.n_embd), static_cast<long long>(config.n_head),
        static_cast<long long>(config.n_head_kv), static_cast<long long>(config.n_ff),
        static_cast<long long>(config.n_ctx_train), static_cast<long long>(r.batch),
        static_cast<long long>(r.accum));
    if (donor) print_lens("train", *donor, config.n_embd);
  }
  const std::string model_name = std::filesystem::path(s.out_path).stem().string();
  train::RunDescription run = {
      {"mode", "train"},
      {"shape",
       str(config.arch().name, " ", config.n_layer, "x", config.n_embd, " heads ", config.n_head,
           "/", config.n_head_kv, " ff ", config.n_ff, " vocab ", config.n_vocab)}};
  if (donor) run.push_back(donor->run_entry());
  run_training("train", store, data, r, s.shape.n_ctx, s.out_path, run, [&] {
    train::write_model_gguf(s.out_path, store, model_name, out_type, tokenizer_metadata);
  });
  return 0;
}

}  // namespace toy::cli
