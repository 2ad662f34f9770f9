// toy finetune -m BASE.gguf --data FILE [--val-data FILE] -o OUT.gguf: trains an
// existing model on the user's data (text or JSON lines, tokenized by the base's
// own tokenizer), as LoRA adapters (default; written in llama.cpp's adapter format)
// or with --full as a whole new model. The base stays memory-mapped in its stored
// type; see train/finetune.h for what is trained and how it is written.
//
// --donor-embeddings DONOR.gguf (with --full) is toy train's projection lens over the base:
// the donor's vocabulary and frozen token table are the input, a new lens.proj.weight maps
// them into the base's width, and the head is the base's when the vocabulary is the same,
// else a new one (train/lens.h).
//
// Defaults follow Hugging Face PEFT / Trainer habits: LoRA r = 8, alpha = 16 on q and v,
// AdamW (0.9, 0.999) without weight decay, lr 2e-4 for LoRA and 2e-5 for --full.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/donor_embeddings.h"
#include "cli/files.h"
#include "cli/training.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/export.h"
#include "train/finetune.h"
#include "train/lens.h"
#include "train/model.h"

namespace toy::cli {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

// The head under a lens, for the checkpoint's run description.
const char* lens_head_name(train::LensHead head) {
  switch (head) {
    case train::LensHead::Base:
      return "base output.weight";
    case train::LensHead::BaseTied:
      return "base token_embd (tied)";
    case train::LensHead::New:
      return "new";
  }
  return "?";
}

// What happened to the base's output head, said on start.
std::string lens_head_note(train::LensHead head, const Model& base, const DonorEmbeddings& donor,
                           bool train_embeddings) {
  const char* trained = train_embeddings ? "trained (--train-embeddings)" : "frozen";
  switch (head) {
    case train::LensHead::Base:
      return str("the donor's vocabulary is the base's: the base's output.weight stays the head, ",
                 trained);
    case train::LensHead::BaseTied:
      return str(
          "the donor's vocabulary is the base's: the base's tied head (its own "
          "token_embd.weight) stays the head, ",
          trained, ", and is written as output.weight (token_embd becomes the lens)");
    case train::LensHead::New:
      break;
  }
  return str("the donor's vocabulary (", donor.n_vocab(), " tokens) is not the base's (",
             base.config.n_vocab, base.config.has_vocab ? " tokens" : " bare ids",
             "), so the base's head cannot read it: a new output.weight [", base.config.n_embd,
             ", ", donor.n_vocab(), "] trains, starting as the folded lens table (tied at step 0)");
}

}  // namespace

int run_finetune(int argc, char** argv) {
  CommandLine cl(
      "finetune",
      "Fine-tune a GGUF model on your data: LoRA adapters (llama.cpp's format) or, with\n"
      "--full, every block weight. The base stays mapped in its stored type.");
  CLI::App& app = cl.app();
  std::string model_path, out_path, targets = "q,v", out_type_name, donor_path;
  int64_t n_ctx = 256, rank = 8;
  double alpha = 16.0;
  bool full = false, train_embeddings = false, train_experts = false;
  TrainingFlags f;
  f.steps = 100;
  f.batch = 4;
  f.lr = 2e-4;
  f.weight_decay = 0.0;
  f.beta2 = 0.999;
  app.add_option("-m,--model", model_path, "base GGUF model (any weight type)")->required();
  app.add_option("-o,--output", out_path,
                 "output: the LoRA adapter GGUF, or with --full the model (written atomically)")
      ->required();
  add_training_flags(cl, f);
  cl.add_context(n_ctx, "tokens per training row T (capped at the model's context)", ",--ctx")
      ->check(at_least(1))
      ->capture_default_str();
  auto* rank_opt = app.add_option("--lora-rank,-r", rank, "LoRA rank r")
                       ->check(at_least(1))
                       ->capture_default_str();
  auto* alpha_opt =
      app.add_option("--lora-alpha", alpha, "LoRA alpha (the update is alpha/r * B*A)")
          ->check(greater_than(0))
          ->capture_default_str();
  double dropout = 0.0;
  auto* dropout_opt =
      app.add_option("--lora-dropout", dropout, "LoRA dropout on the adapters' inputs (PEFT's)")
          ->check(in_range(0, 1, false, /*hi_open=*/true))
          ->capture_default_str();
  auto* targets_opt =
      app.add_option("--lora-targets", targets,
                     "matrices to adapt: q,k,v,o,gate,up,down (PEFT's q_proj... too) or all-linear")
          ->capture_default_str();
  app.add_flag("--full", full, "train every block weight (F32 master copies) instead of LoRA");
  auto* embd_opt = app.add_flag("--train-embeddings", train_embeddings,
                                "--full: train token embeddings, final norm and output too (with "
                                "--donor-embeddings: the final norm and a kept base head; the "
                                "donor's table stays frozen)");
  auto* experts_opt = app.add_flag(
      "--train-experts", train_experts,
      "--full on a mixture of experts: train the experts and router too (default: frozen)");
  auto* out_type_opt = app.add_option("--out-type", out_type_name,
                                      "--full: f32, f16, bf16 or q8_0 (default: the base's types)");
  auto* donor_opt = app.add_option(
      "--donor-embeddings", donor_path,
      "--full: projection lens: this GGUF's vocabulary (the data is tokenized with it and the "
      "output carries it) and frozen token embeddings, mapped into the base's width by a trained "
      "lens.proj.weight (folded into token_embd when written); the base's output head is kept "
      "if the vocabulary is the same, else a new trained output.weight starts as the folded "
      "table");
  if (!cl.parse(argc, argv)) return 0;

  if (full) {
    for (const CLI::Option* option : {rank_opt, alpha_opt, targets_opt, dropout_opt})
      if (option->count() > 0)
        usage_error(option->get_name(), " is a LoRA flag; drop it or --full");
    if (f.lr_opt->count() == 0) f.lr = 2e-5;
  } else {
    if (donor_opt->count() > 0)
      usage_error(
          "--donor-embeddings: a LoRA adapter cannot change the vocabulary; use --full "
          "(the lens, the donor's vocabulary and the head are written as a whole model)");
    for (const CLI::Option* option : {embd_opt, experts_opt, out_type_opt})
      if (option->count() > 0) usage_error(option->get_name(), " needs --full");
  }
  std::optional<DType> out_type;
  if (!out_type_name.empty()) out_type = train::parse_out_type(out_type_name);
  const std::vector<std::string> lora_targets =
      full ? std::vector<std::string>{} : train::parse_lora_targets(targets);
  check_training_flags(f, {"-o", out_path},
                       {{"-m", model_path}, {"--donor-embeddings", donor_path}});

  const Model model = Model::load(model_path);
  train::check_trainable(model.config);
  if (train_experts && !model.config.is_moe())
    usage_error("--train-experts: ", model_path, " is not a mixture of experts");
  if (model.config.is_moe() && train_experts && !f.quiet) {
    note("finetune", str("a mixture of experts (", model.config.n_expert, " experts, top ",
                         model.config.n_expert_used, "): the experts and router train too"));
  } else if (model.config.is_moe() && !f.quiet) {
    const ModelConfig& c = model.config;
    note("finetune", str("a mixture of experts (", c.n_expert, " experts, top ", c.n_expert_used,
                         c.arch().shared_expert ? ", a shared expert" : "",
                         "): the experts and router are frozen — only ",
                         !full              ? "the attention adapters"
                         : train_embeddings ? "attention, norm and embedding weights"
                                            : "attention and norm weights",
                         " train; gradients flow through the experts to them",
                         full ? " (--train-experts trains them too)" : ""));
  }
  // The tokenizer of the written model: the base's, or under a lens the donor's.
  const std::shared_ptr<const tokenizer::Tokenizer> base_tok =
      tokenizer::Tokenizer::from_gguf(*model.file);
  std::optional<DonorEmbeddings> donor;  // --donor-embeddings: its table stays mapped
  if (!donor_path.empty()) donor.emplace(load_donor_embeddings(donor_path));
  const std::shared_ptr<const tokenizer::Tokenizer> tok = donor ? donor->tokenizer : base_tok;
  if (!tok->has_text())
    fail(model_path,
         ": the model has no vocabulary (tokenizer.ggml.model), so text cannot be "
         "tokenized for it");
  if (model.config.n_ctx_train > 0 && n_ctx > model.config.n_ctx_train) {
    if (cl.app().get_option("-c")->count() > 0 && !f.quiet)
      note("finetune", str("-c ", n_ctx, " is beyond the model's context ",
                           model.config.n_ctx_train, "; using ", model.config.n_ctx_train));
    n_ctx = model.config.n_ctx_train;
  }
  train::DataSource source = read_data_file(f);
  const bool chat = std::any_of(source.records.begin(), source.records.end(), [](const auto& r) {
    return r.kind == train::SftRecord::Kind::Messages ||
           r.kind == train::SftRecord::Kind::ChatPromptCompletion;
  });
  if (chat && tok->vocab().chat_template().empty() && !f.quiet)
    note("finetune",
         "the model has no tokenizer.chat_template: conversations are rendered as ChatML, "
         "which `toy chat` and llama.cpp use for such a model");
  const TrainingData data = tokenize_training_data(f, std::move(source), *tok, n_ctx, "finetune");

  std::unique_ptr<train::ParamStore<float>> store;
  train::RunDescription run = {{"base", str(std::filesystem::path(model_path).filename().string(),
                                            " (", model.file->file_size(), " bytes)")}};
  if (donor) {
    const bool same_vocab = train::same_vocabulary(base_tok->vocab(), tok->vocab());
    train::LensStore lens = train::make_lens_store(model, donor->table(), same_vocab,
                                                   train_embeddings, train_experts, f.seed);
    store = std::move(lens.store);
    run.push_back({"mode", train_embeddings ? "full+embeddings" : "full"});
    run.push_back(donor->run_entry());
    run.push_back({"head", lens_head_name(lens.head)});
    if (!f.quiet) {
      print_lens("finetune", *donor, model.config.n_embd);
      note("finetune", lens_head_note(lens.head, model, *donor, train_embeddings));
    }
  } else if (full) {
    store = train::make_full_store(model, train_embeddings, train_experts);
    run.push_back({"mode", train_embeddings ? "full+embeddings" : "full"});
  } else {
    train::LoraConfig lora;
    lora.rank = rank;
    lora.alpha = alpha;
    lora.targets = lora_targets;
    lora.seed = f.seed;
    store = train::make_lora_store<float>(model.config, model.weights, lora);
    run.push_back({"mode", "lora"});
    run.push_back({"lora", str("r ", rank, " alpha ", alpha, " targets ", join(lora_targets),
                               " dropout ", dropout)});
    f.lora_dropout = dropout;
  }

  if (full) train::check_written_types(*store, model, out_type);  // before training, not after

  int64_t base_params = 0;
  for_each_tensor(model.config, model.weights,
                  [&](const TensorSpec&, const Tensor& t) { base_params += t.numel(); });
  if (!f.quiet) {
    const ModelConfig& c = store->config();  // under a lens, the donor's vocabulary
    std::fprintf(stderr,
                 "finetune: %s (%s, %lld layers, n_embd %lld, vocab %lld), %s: %lld trainable "
                 "params (%.3f%% of %lld), ctx %lld, batch %lld x %lld accum\n",
                 model_path.c_str(), c.arch().name.data(), static_cast<long long>(c.n_layer),
                 static_cast<long long>(c.n_embd), static_cast<long long>(c.n_vocab),
                 donor ? (train_embeddings ? "full with norm and head, through the lens"
                                           : "full (blocks), through the lens")
                 : full
                     ? (train_embeddings ? "full with embeddings" : "full (blocks)")
                     : str("LoRA r=", rank, " alpha=", alpha, " on ", join(lora_targets)).c_str(),
                 static_cast<long long>(store->total()),
                 100.0 * double(store->total()) / double(std::max<int64_t>(1, base_params)),
                 static_cast<long long>(base_params), static_cast<long long>(n_ctx),
                 static_cast<long long>(f.batch), static_cast<long long>(f.accum));
  }

  ThreadPool writer_pool(f.threads > 0 ? f.threads : default_thread_count());
  const std::string name = std::filesystem::path(out_path).stem().string();
  run_training("finetune", *store, data, f, n_ctx, out_path, run, [&] {
    if (donor) {
      train::write_finetuned_model(out_path, *store, model, out_type, writer_pool,
                                   [&](gguf::Writer& writer) { donor->write_tokenizer(writer); });
    } else if (full) {
      train::write_finetuned_model(out_path, *store, model, out_type, writer_pool);
    } else {
      train::write_lora_adapter(out_path, *store, model.config, alpha, name);
    }
  });
  return 0;
}

}  // namespace toy::cli
