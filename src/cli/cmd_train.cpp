// toy train -o OUT.gguf --data FILE.txt [shape, optimizer and run flags]: trains
// a dense llama-family model from scratch on a text file (nanoGPT / llm.c style)
// and writes it as a standard GGUF that toy and llama.cpp load. --data may also
// be JSON lines of fine-tuning examples (train/sft_data.h), optionally --pack'ed.
//
// `--preset shakespeare-char` fills in the configuration of the PyTorch
// reference run (../shared/bench/REFERENCE.md); explicit flags override it.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"
#include "train/dataset.h"
#include "train/export.h"
#include "train/params.h"
#include "train/scratch_config.h"
#include "train/sft_data.h"
#include "train/trainer.h"
#include "train/vocab.h"

namespace toy::cli {
namespace {

struct Settings {
  std::string out_path, data_path, vocab = "byte", vocab_from, preset, out_type = "f32";
  double val_fraction = 0.1;
  train::ScratchShape shape;
  bool tied = false;
  int64_t steps = 1000, batch = 8, accum = 1, warmup = 0;
  int64_t eval_every = 0, eval_batches = 20, save_every = 0;
  double lr = 1e-3, min_lr = -1.0, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.99, eps = 1e-8;
  double grad_clip = 1.0, init_scale = 1.0;
  std::string schedule = "cosine";
  bool jsonl = false, train_on_prompt = false, pack = false;
  std::string dump_tokens;
  uint64_t seed = 1337;
  int threads = 0;
  bool quiet = false;
};

// Sets `var` to the preset's `value` unless the flag was given explicitly.
template <typename T, typename V>
void preset_value(const CLI::Option* option, T& var, V value) {
  if (option->count() == 0) var = static_cast<T>(value);
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0.0) || seconds > 1e7) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return str(s / 3600, "h", (s % 3600) / 60, "m");
  if (s >= 60) return str(s / 60, "m", s % 60, "s");
  return str(s, "s");
}

// --dump-tokens: the ids as `toy tokenize` prints them, one line per example.
void write_token_dump(const std::string& path, const train::TokenizedData& data) {
  std::string text;
  auto line = [&](const std::vector<int32_t>& ids) {
    for (size_t i = 0; i < ids.size(); ++i) text += (i ? " " : "") + std::to_string(ids[i]);
    text += '\n';
  };
  if (data.examples.empty()) line(data.stream);
  for (const train::Example& e : data.examples) line(e.tokens);
  write_output_file(path, text.data(), text.size());
}

std::string read_corpus(const std::string& path) {
  std::string text = read_input_text({"--data", path}, /*allow_stdin=*/false);
  if (text.empty()) fail("--data ", path, ": the file is empty");
  return text;
}

}  // namespace

int run_train(int argc, char** argv) {
  Settings s;
  CommandLine cl("train", "Train a llama-family model from scratch on a text file; writes a GGUF.");
  CLI::App& app = cl.app();
  const auto positive = at_least(1);
  app.add_option("-o,--output", s.out_path, "output GGUF (written atomically)")->required();
  app.add_option("--data", s.data_path, "training text, or JSON lines (*.jsonl)")->required();
  app.add_flag("--jsonl", s.jsonl,
               "--data is JSON lines whatever its name: {\"text\"}, {\"prompt\", "
               "\"completion\"} or {\"messages\"}");
  auto* prompt_opt = app.add_flag("--train-on-prompt", s.train_on_prompt,
                                  "JSON lines: loss on prompts too, not only on completions");
  auto* pack_opt = app.add_flag("--pack", s.pack,
                                "JSON lines: pack several examples into each row of --ctx tokens");
  // Debugging and tests: the ids training reads, one line per example (or one for a text file).
  app.add_option("--dump-tokens", s.dump_tokens)->group("");
  auto* preset_opt = app.add_option("--preset", s.preset, "shakespeare-char");
  auto* val_opt = app.add_option("--val-fraction", s.val_fraction, "held-out tail of the file")
                      ->check(in_range(0, 1, false, /*hi_open=*/true))
                      ->capture_default_str();
  auto* vocab_opt = app.add_option("--vocab", s.vocab, "byte or chars")->capture_default_str();
  app.add_option("--vocab-from", s.vocab_from, "use the vocabulary of this GGUF model");
  auto* arch_opt =
      app.add_option("--arch", s.shape.arch, "llama, qwen2 or qwen3")->capture_default_str();
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
  app.add_option("--rms-eps", s.shape.rms_eps, "RMSNorm epsilon")
      ->check(greater_than(0))
      ->capture_default_str();
  auto* tied_opt = app.add_flag("--tied", s.tied, "tie the output projection to the embeddings");
  auto* batch_opt = app.add_option("--batch", s.batch, "sequences per micro-step B")
                        ->check(positive)
                        ->capture_default_str();
  auto* steps_opt =
      app.add_option("--steps", s.steps, "optimizer steps")->check(positive)->capture_default_str();
  auto* lr_opt = app.add_option("--lr", s.lr, "peak learning rate")
                     ->check(greater_than(0))
                     ->capture_default_str();
  auto* min_lr_opt = app.add_option("--min-lr", s.min_lr, "final learning rate (default lr/10)")
                         ->check(at_least(0));
  auto* schedule_opt =
      app.add_option("--lr-schedule", s.schedule, "cosine or constant")->capture_default_str();
  auto* warmup_opt = app.add_option("--warmup", s.warmup, "linear warm-up steps")
                         ->check(at_least(0))
                         ->capture_default_str();
  auto* wd_opt = app.add_option("--weight-decay", s.weight_decay, "AdamW decay (2-D weights)")
                     ->check(at_least(0))
                     ->capture_default_str();
  const auto beta_range = in_range(0, 1, false, /*hi_open=*/true);
  auto* beta1_opt =
      app.add_option("--beta1", s.beta1, "AdamW beta1")->check(beta_range)->capture_default_str();
  auto* beta2_opt =
      app.add_option("--beta2", s.beta2, "AdamW beta2")->check(beta_range)->capture_default_str();
  app.add_option("--adam-eps", s.eps, "AdamW epsilon")
      ->check(greater_than(0))
      ->capture_default_str();
  auto* clip_opt = app.add_option("--grad-clip", s.grad_clip, "global gradient-norm clip (0: off)")
                       ->check(at_least(0))
                       ->capture_default_str();
  app.add_option("--accum", s.accum, "gradient accumulation micro-steps")
      ->check(positive)
      ->capture_default_str();
  app.add_option("--init-scale", s.init_scale, "linear weights ~ N(0, scale/sqrt(fan_in))")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--seed", s.seed, "seed of the initialization and batches")->capture_default_str();
  auto* eval_opt = app.add_option("--eval-every", s.eval_every, "validation every E steps (0: off)")
                       ->check(at_least(0))
                       ->capture_default_str();
  app.add_option("--eval-batches", s.eval_batches, "batches per periodic validation")
      ->check(positive)
      ->capture_default_str();
  app.add_option("--save-every", s.save_every, "write OUT every S steps (0: only at the end)")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--out-type", s.out_type, "f32, f16, bf16 or q8_0")->capture_default_str();
  cl.add_threads(s.threads, "threads (default: physical cores)");
  app.add_flag("-q,--quiet", s.quiet, "no progress output on stderr");
  if (!cl.parse(argc, argv)) return 0;

  if (preset_opt->count() > 0) {
    if (s.preset != "shakespeare-char")
      fail("unknown --preset '", s.preset, "'; the presets are: shakespeare-char");
    // The PyTorch reference configuration (REFERENCE.md), with nanoGPT's
    // shakespeare_char schedule (100 warm-up steps, cosine to lr/10).
    preset_value(vocab_opt, s.vocab, "chars");
    preset_value(val_opt, s.val_fraction, 0.1);
    preset_value(arch_opt, s.shape.arch, "llama");
    preset_value(embd_opt, s.shape.n_embd, 128);
    preset_value(layer_opt, s.shape.n_layer, 4);
    preset_value(head_opt, s.shape.n_head, 4);
    preset_value(head_kv_opt, s.shape.n_head_kv, 4);
    preset_value(ff_opt, s.shape.n_ff, 384);
    preset_value(ctx_opt, s.shape.n_ctx, 64);
    preset_value(batch_opt, s.batch, 12);
    preset_value(steps_opt, s.steps, 2000);
    preset_value(lr_opt, s.lr, 1e-3);
    preset_value(min_lr_opt, s.min_lr, 1e-4);
    preset_value(schedule_opt, s.schedule, "cosine");
    preset_value(warmup_opt, s.warmup, 100);
    preset_value(wd_opt, s.weight_decay, 0.1);
    preset_value(beta1_opt, s.beta1, 0.9);
    preset_value(beta2_opt, s.beta2, 0.99);
    preset_value(clip_opt, s.grad_clip, 1.0);
    preset_value(eval_opt, s.eval_every, 250);
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
  if (s.schedule != "cosine" && s.schedule != "constant")
    usage_error("--lr-schedule must be cosine or constant, got '", s.schedule, "'");
  const DType out_type = train::parse_out_type(s.out_type);
  const bool jsonl = s.jsonl || s.data_path.ends_with(".jsonl");
  for (const CLI::Option* option : {prompt_opt, pack_opt})
    if (option->count() > 0 && !jsonl)
      usage_error(option->get_name(), " needs JSON-lines data (a .jsonl --data file, or --jsonl)");
  // Everything that can make the end of the run fail is checked before it starts.
  check_output({"-o", s.out_path}, {{"--data", s.data_path}, {"--vocab-from", s.vocab_from}});
  if (!s.dump_tokens.empty())
    check_output({"--dump-tokens", s.dump_tokens}, {{"--data", s.data_path}, {"-o", s.out_path}});
  check_input_file({"--data", s.data_path});
  if (!s.vocab_from.empty()) check_input_file({"--vocab-from", s.vocab_from});

  // The vocabulary the output file will carry, and the data tokenized by exactly
  // that vocabulary's tokenizer (what `toy tokenize` on the output gives).
  const train::DataSource source =
      train::read_data_source(s.data_path, read_corpus(s.data_path), jsonl);
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::function<void(gguf::Writer&)> tokenizer_metadata;
  std::shared_ptr<gguf::File> vocab_file;
  std::unique_ptr<train::TrainVocab> vocab;
  if (!s.vocab_from.empty()) {
    vocab_file = gguf::File::open(s.vocab_from);
    tok = tokenizer::Tokenizer::from_gguf(*vocab_file);
    if (!tok->has_text())
      fail("--vocab-from ", s.vocab_from, ": the model has no vocabulary (tokenizer.ggml.model)");
    tokenizer_metadata = [&](gguf::Writer& writer) {
      for (size_t i = 0; i < vocab_file->metadata_count(); ++i) {
        const gguf::ValueRef value = vocab_file->metadata(i);
        if (value.key().starts_with("tokenizer."))
          writer.set(std::string(value.key()), value.to_value());
      }
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
  const bool chat = std::any_of(source.records.begin(), source.records.end(), [](const auto& r) {
    return r.kind == train::SftRecord::Kind::Messages ||
           r.kind == train::SftRecord::Kind::ChatPromptCompletion;
  });
  if (chat && tok->vocab().chat_template().empty() && !s.quiet)
    note("train",
         "the vocabulary has no tokenizer.chat_template: conversations are rendered as ChatML, "
         "which `toy chat` and llama.cpp use for such a model");
  train::TokenizedData tokenized =
      train::tokenize_data(source, *tok, {s.train_on_prompt}, s.data_path);
  if (!s.dump_tokens.empty()) write_token_dump(s.dump_tokens, tokenized);
  const auto data_ptr =
      source.jsonl ? std::make_unique<train::Dataset>(tokenized.examples, s.val_fraction,
                                                      s.shape.n_ctx, s.pack, s.data_path)
                   : std::make_unique<train::Dataset>(std::move(tokenized.stream), s.val_fraction,
                                                      s.shape.n_ctx, s.data_path);
  const train::Dataset& data = *data_ptr;

  const ModelConfig config = train::scratch_config(s.shape);
  train::ParamStore<float> store(config, [&](const TensorSpec& spec) {
    if (spec.name == "output.weight") return !s.tied;
    return spec.name.ends_with(".bias") && config.arch().qkv_bias;
  });
  train::init_random(store, s.seed, s.init_scale);

  train::TrainOptions options;
  options.steps = s.steps;
  options.n_seq = s.batch;
  options.n_pos = s.shape.n_ctx;
  options.accum = s.accum;
  options.adamw = {s.lr, s.beta1, s.beta2, s.eps, s.weight_decay};
  options.schedule.lr = s.lr;
  options.schedule.min_lr = s.min_lr >= 0.0 ? s.min_lr : s.lr / 10.0;
  options.schedule.warmup = s.warmup;
  options.schedule.total = s.steps;
  options.schedule.cosine = s.schedule == "cosine";
  options.grad_clip = s.grad_clip;
  options.seed = s.seed;
  options.eval_every = s.eval_every;
  options.eval_batches = s.eval_batches;
  options.save_every = s.save_every;

  ThreadPool pool(s.threads > 0 ? s.threads : default_thread_count());
  const std::string model_name = std::filesystem::path(s.out_path).stem().string();
  auto save = [&] {
    train::write_model_gguf(s.out_path, store, model_name, out_type, tokenizer_metadata);
  };

  if (!s.quiet) {
    std::fprintf(
        stderr,
        "train: %s, %lld params, vocab %lld, %lld layers, n_embd %lld, %lld heads (%lld kv), "
        "n_ff %lld, ctx %lld, batch %lld x %lld accum, %d threads\n",
        config.arch().name.data(), static_cast<long long>(store.total()),
        static_cast<long long>(config.n_vocab), static_cast<long long>(config.n_layer),
        static_cast<long long>(config.n_embd), static_cast<long long>(config.n_head),
        static_cast<long long>(config.n_head_kv), static_cast<long long>(config.n_ff),
        static_cast<long long>(config.n_ctx_train), static_cast<long long>(s.batch),
        static_cast<long long>(s.accum), pool.size());
    if (data.has_examples()) {
      const train::RowStats& t = data.train_stats();
      const train::RowStats& v = data.val_stats();
      std::fprintf(stderr,
                   "train: %s: %lld examples (%lld tokens) in %lld rows for training, %lld "
                   "(%lld tokens) in %lld rows held out; %lld truncated to --ctx + 1 tokens, "
                   "%lld without a token to learn dropped\n",
                   s.data_path.c_str(), static_cast<long long>(t.examples),
                   static_cast<long long>(data.train_tokens()), static_cast<long long>(t.rows),
                   static_cast<long long>(v.examples), static_cast<long long>(data.val_tokens()),
                   static_cast<long long>(v.rows),
                   static_cast<long long>(t.truncated + v.truncated),
                   static_cast<long long>(t.dropped + v.dropped));
    } else {
      std::fprintf(
          stderr, "train: %s: %lld tokens, %lld for training, %lld held out\n", s.data_path.c_str(),
          static_cast<long long>(data.train_tokens() + data.val_tokens()),
          static_cast<long long>(data.train_tokens()), static_cast<long long>(data.val_tokens()));
    }
  }

  const bool tty = isatty(fileno(stderr));
  const int64_t line_every = std::max<int64_t>(1, s.steps / 50);
  double last_val = -1.0;
  int64_t last_val_step = 0;
  train::Trainer trainer(store, data, options, pool);
  trainer.run(
      [&](const train::StepReport& r) {
        if (r.val_loss >= 0.0) last_val = r.val_loss, last_val_step = r.step;
        if (s.quiet) return;
        const double eta =
            r.tokens_per_s > 0.0 ? r.seconds / double(r.step) * double(s.steps - r.step) : -1.0;
        // A validation loss from an earlier step says which step, so it does not read as new.
        char val[48] = "-";
        if (r.val_loss >= 0.0) {
          std::snprintf(val, sizeof(val), "%.4f", r.val_loss);
        } else if (last_val >= 0.0) {
          std::snprintf(val, sizeof(val), "%.4f (step %lld)", last_val,
                        static_cast<long long>(last_val_step));
        }
        char line[256];
        std::snprintf(line, sizeof(line),
                      "step %lld/%lld | loss %.4f | val %s | lr %.2e | %.0f tok/s | ETA %s",
                      static_cast<long long>(r.step), static_cast<long long>(s.steps), r.loss, val,
                      r.lr, r.tokens_per_s, format_duration(eta).c_str());
        if (tty) {
          std::fprintf(stderr, "\r%-100s%s", line, r.val_loss >= 0.0 ? "\n" : "");
        } else if (r.step % line_every == 0 || r.val_loss >= 0.0 || r.step == s.steps) {
          std::fprintf(stderr, "%s\n", line);
        }
      },
      [&](int64_t step) {
        save();
        if (!s.quiet)
          std::fprintf(stderr, "%strain: step %lld: wrote %s\n", tty ? "\n" : "",
                       static_cast<long long>(step), s.out_path.c_str());
      });
  if (!s.quiet && tty) std::fprintf(stderr, "\n");

  const double tokens_per_s = trainer.tokens_per_s();
  const double train_loss = trainer.estimate_train_loss(20);
  const double val_loss = data.val_windows() > 0 ? trainer.evaluate_val(0) : NAN;
  save();
  if (!s.quiet) {
    std::fprintf(stderr, "train: wrote %s\n", s.out_path.c_str());
    // The periodic evaluations sample --eval-batches batches; the final one reads the whole
    // held-out split, so the two can differ.
    std::fprintf(stderr,
                 "train: final val_loss over the whole held-out split (%lld windows), train_loss "
                 "over 20 sampled batches%s\n",
                 static_cast<long long>(data.val_windows()),
                 s.eval_every > 0 ? "; periodic val losses sampled --eval-batches batches" : "");
  }
  std::printf("final: steps %lld train_loss %.4f val_loss %.4f tokens_per_s %.0f\n",
              static_cast<long long>(trainer.steps_done()), train_loss, val_loss, tokens_per_s);
  return 0;
}

}  // namespace toy::cli
