#include "cli/training.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/process_group.h"
#include "cli/training_plots.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/features.h"
#include "model/taps.h"

namespace toy::cli {
namespace {

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

train::DataSource read_source(const NamedPath& file, bool jsonl) {
  std::string text = read_input_text(file, /*allow_stdin=*/false);
  if (text.empty()) fail(file.flag, " ", file.path, ": the file is empty");
  return train::read_data_source(file.path, std::move(text), jsonl);
}

void print_data(const std::string& command, const TrainingFlags& f, const train::Dataset& data) {
  const std::string held = f.val_data_path.empty() ? "held out" : "in " + f.val_data_path;
  if (data.has_examples()) {
    const train::RowStats& t = data.train_stats();
    const train::RowStats& v = data.val_stats();
    std::fprintf(stderr,
                 "%s: %s: %lld examples (%lld tokens) in %lld rows for training, %lld "
                 "(%lld tokens) in %lld rows %s; %lld truncated to --ctx + 1 tokens, "
                 "%lld without a token to learn dropped\n",
                 command.c_str(), f.data_path.c_str(), static_cast<long long>(t.examples),
                 static_cast<long long>(data.train_tokens()), static_cast<long long>(t.rows),
                 static_cast<long long>(v.examples), static_cast<long long>(data.val_tokens()),
                 static_cast<long long>(v.rows), held.c_str(),
                 static_cast<long long>(t.truncated + v.truncated),
                 static_cast<long long>(t.dropped + v.dropped));
  } else {
    std::fprintf(stderr, "%s: %s: %lld tokens for training, %lld %s\n", command.c_str(),
                 f.data_path.c_str(), static_cast<long long>(data.train_tokens()),
                 static_cast<long long>(data.val_tokens()), held.c_str());
  }
}

}  // namespace

void add_training_flags(CommandLine& cl, TrainingFlags& f) {
  CLI::App& app = cl.app();
  const auto positive = at_least(1);
  app.add_option("--data", f.data_path, "training text, or JSON lines (*.jsonl)")->required();
  app.add_option("--val-data", f.val_data_path,
                 "validation text / JSON lines (default: the --val-fraction tail of --data)");
  app.add_flag("--jsonl", f.jsonl,
               "--data is JSON lines whatever its name: {\"text\"}, {\"prompt\", "
               "\"completion\"} or {\"messages\"}");
  f.prompt_opt = app.add_flag("--train-on-prompt", f.train_on_prompt,
                              "JSON lines: loss on prompts too, not only on completions");
  f.pack_opt = app.add_flag("--pack", f.pack,
                            "JSON lines: pack several examples into each row of --ctx tokens");
  // Debugging and tests: the ids training reads, one line per example (or one for a text file).
  app.add_option("--dump-tokens", f.dump_tokens)->group("");
  f.val_opt = app.add_option("--val-fraction", f.val_fraction, "held-out tail of --data")
                  ->check(in_range(0, 1, false, /*hi_open=*/true))
                  ->capture_default_str();
  f.batch_opt = app.add_option("--batch", f.batch, "sequences per micro-step B")
                    ->check(positive)
                    ->capture_default_str();
  f.steps_opt =
      app.add_option("--steps", f.steps, "optimizer steps")->check(positive)->capture_default_str();
  f.lr_opt = app.add_option("--lr", f.lr, "peak learning rate")
                 ->check(greater_than(0))
                 ->capture_default_str();
  f.min_lr_opt = app.add_option("--min-lr", f.min_lr, "final learning rate (default lr/10)")
                     ->check(at_least(0));
  f.schedule_opt =
      app.add_option("--lr-schedule", f.schedule, "cosine or constant")->capture_default_str();
  f.warmup_opt = app.add_option("--warmup", f.warmup, "linear warm-up steps")
                     ->check(at_least(0))
                     ->capture_default_str();
  f.wd_opt = app.add_option("--weight-decay", f.weight_decay, "AdamW decay (2-D weights)")
                 ->check(at_least(0))
                 ->capture_default_str();
  const auto beta_range = in_range(0, 1, false, /*hi_open=*/true);
  f.beta1_opt =
      app.add_option("--beta1", f.beta1, "AdamW beta1")->check(beta_range)->capture_default_str();
  f.beta2_opt =
      app.add_option("--beta2", f.beta2, "AdamW beta2")->check(beta_range)->capture_default_str();
  app.add_option("--adam-eps", f.eps, "AdamW epsilon")
      ->check(greater_than(0))
      ->capture_default_str();
  f.clip_opt = app.add_option("--grad-clip", f.grad_clip, "global gradient-norm clip (0: off)")
                   ->check(at_least(0))
                   ->capture_default_str();
  app.add_option("--accum", f.accum, "gradient accumulation micro-steps")
      ->check(positive)
      ->capture_default_str();
  app.add_option("--compute-type", f.compute_type,
                 "arithmetic of the weight products: f32, bf16 (inputs rounded to bf16, f32 sums "
                 "and master weights; bf16 dot products where the CPU has them) or f16 (inputs "
                 "rounded to f16, with dynamic loss scaling)")
      ->capture_default_str();
  app.add_option("--metrics", f.metrics_path,
                 "JSON lines: one object per step (loss, lr, tokens/s, gradient norm, validation "
                 "loss when evaluated) with per-tensor statistics every --metrics-every steps");
  app.add_option("--metrics-every", f.metrics_every,
                 "steps between per-tensor gradient norm / update ratio / drift (0: none)")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--tap", f.taps,
                 "activation statistics (mean, rms, max |x|, non-finite count) into --metrics "
                 "every --metrics-every steps: comma-separated points of every layer or of one "
                 "(blk.N.<point>): attn_norm, attn_out, resid_mid, ffn_norm, ffn_out, resid_post");
  app.add_option("--plot", f.plot_path,
                 "SVG of the train/validation loss and learning rate, written at each "
                 "--save-every and at the end (like toy plot)");
  app.add_option("--plot-grads", f.plot_grads_path,
                 "SVG of the per-tensor gradient norms (every --metrics-every steps), log scale");
  app.add_option("--seed", f.seed, "seed of the initialization and batches")->capture_default_str();
  f.eval_opt = app.add_option("--eval-every", f.eval_every, "validation every E steps (0: off)")
                   ->check(at_least(0))
                   ->capture_default_str();
  app.add_option("--eval-batches", f.eval_batches,
                 "batches per periodic validation and of the final training-loss estimate")
      ->check(positive)
      ->capture_default_str();
  app.add_option("--save-every", f.save_every,
                 "every S steps write the output and a checkpoint for --resume (0: only at the "
                 "end, no checkpoint)")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--checkpoint-dir", f.checkpoint_dir,
                 "where --save-every writes checkpoints (default: OUT.checkpoint)");
  app.add_option("--resume", f.resume, "continue from the checkpoint in this directory");
  app.add_flag("--shard-optimizer", f.shard_optimizer,
               "under mpirun: split the AdamW moments and update over the ranks (ZeRO-1)");
  app.add_flag("--no-overlap", f.no_overlap,
               "under mpirun: sum the gradients over the ranks after the backward, not layer by "
               "layer during it");
  cl.add_threads(f.threads, "threads (default: physical cores)");
  app.add_flag("-q,--quiet", f.quiet, "no progress output on stderr");
}

void check_training_flags(TrainingFlags& f, const NamedPath& output,
                          std::vector<NamedPath> inputs) {
  const train::Communicator& group = process_group();
  if (f.batch % group.size() != 0)
    usage_error("--batch ", f.batch, " is the global batch and must be a multiple of the ",
                group.size(), " MPI ranks (each rank trains batch/ranks rows of it)");
  if (f.compute_type != "f32" && f.compute_type != "bf16" && f.compute_type != "f16")
    usage_error("--compute-type must be f32, bf16 or f16, got '", f.compute_type, "'");
  if (f.schedule != "cosine" && f.schedule != "constant")
    usage_error("--lr-schedule must be cosine or constant, got '", f.schedule, "'");
  for (const CLI::Option* option : {f.prompt_opt, f.pack_opt})
    if (option->count() > 0 && !f.is_jsonl())
      usage_error(option->get_name(), " needs JSON-lines data (a .jsonl --data file, or --jsonl)");
  if (!f.val_data_path.empty() && f.val_opt->count() > 0)
    usage_error("--val-data and --val-fraction exclude each other");
  inputs.push_back({"--data", f.data_path});
  if (!f.val_data_path.empty()) inputs.push_back({"--val-data", f.val_data_path});
  check_output(output, inputs);
  if (!f.taps.empty()) {
    LayerTaps parsed(f.taps);  // the names, before any work
    if (f.metrics_path.empty() || f.metrics_every == 0)
      usage_error("--tap records into --metrics every --metrics-every steps: give --metrics FILE");
  }
  if (!f.metrics_path.empty()) {
    std::vector<NamedPath> all = inputs;
    all.push_back(output);
    check_output({"--metrics", f.metrics_path}, all);
  }
  std::vector<NamedPath> outputs = {output};
  if (!f.metrics_path.empty()) outputs.push_back({"--metrics", f.metrics_path});
  for (const NamedPath& extra :
       {NamedPath{"--dump-tokens", f.dump_tokens}, NamedPath{"--plot", f.plot_path},
        NamedPath{"--plot-grads", f.plot_grads_path}}) {
    if (extra.path.empty()) continue;
    std::vector<NamedPath> all = inputs;
    all.insert(all.end(), outputs.begin(), outputs.end());
    check_output(extra, all);
    outputs.push_back(extra);
  }
  // Outputs that do not exist yet cannot be compared by inode: two flags naming the same
  // path would have one file overwrite the other (a plot replacing the metrics log).
  check_distinct_outputs(outputs);
  if (!f.plot_grads_path.empty() && f.metrics_every == 0)
    usage_error("--plot-grads needs per-tensor statistics: --metrics-every must be at least 1");
  for (const NamedPath& input : inputs)
    if (!input.path.empty()) check_input_file(input);
  if (!f.resume.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(f.resume, ec))
      usage_error("--resume ", f.resume, ": not a directory (give the checkpoint directory that ",
                  "--save-every wrote)");
  }
  if (f.save_every > 0) {
    const std::string dir = f.checkpoint_directory(output.path);
    std::error_code ec;
    if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
      usage_error("--checkpoint-dir ", dir, ": exists and is not a directory");
    const auto parent = std::filesystem::absolute(dir, ec).parent_path();
    if (!std::filesystem::is_directory(parent, ec))
      usage_error("--checkpoint-dir ", dir, ": the directory ", parent.string(), " does not exist");
  }
  if (group.rank() != 0) {
    f.quiet = true;
    f.dump_tokens.clear();
  }
}

train::DataSource read_data_file(const TrainingFlags& f) {
  return read_source({"--data", f.data_path}, f.is_jsonl());
}

TrainingData tokenize_training_data(const TrainingFlags& f, train::DataSource source,
                                    const tokenizer::Tokenizer& tok, int64_t n_ctx,
                                    const std::string& command) {
  TrainingData out;
  const train::SftOptions options{f.train_on_prompt};
  train::TokenizedData tokenized = train::tokenize_data(source, tok, options, f.data_path);
  if (!f.dump_tokens.empty()) write_token_dump(f.dump_tokens, tokenized);
  size_t n_train = source.jsonl ? tokenized.examples.size() : tokenized.stream.size();
  if (!f.val_data_path.empty()) {
    // The held-out file goes after the training data and is held out exactly.
    const train::DataSource val = read_source({"--val-data", f.val_data_path}, source.jsonl);
    train::TokenizedData v = train::tokenize_data(val, tok, options, f.val_data_path);
    if (source.jsonl) {
      const auto held = static_cast<int64_t>(v.examples.size());
      tokenized.examples.insert(tokenized.examples.end(), v.examples.begin(), v.examples.end());
      out.dataset = std::make_unique<train::Dataset>(tokenized.examples, train::HeldOut{held},
                                                     n_ctx, f.pack, f.data_path);
    } else {
      const auto held = static_cast<int64_t>(v.stream.size());
      tokenized.stream.insert(tokenized.stream.end(), v.stream.begin(), v.stream.end());
      out.dataset = std::make_unique<train::Dataset>(std::move(tokenized.stream),
                                                     train::HeldOut{held}, n_ctx, f.data_path);
    }
  } else if (source.jsonl) {
    out.dataset = std::make_unique<train::Dataset>(tokenized.examples, f.val_fraction, n_ctx,
                                                   f.pack, f.data_path);
  } else {
    out.dataset = std::make_unique<train::Dataset>(std::move(tokenized.stream), f.val_fraction,
                                                   n_ctx, f.data_path);
  }
  out.signature = str(f.data_path, " (", n_train, source.jsonl ? " examples" : " tokens", ")");
  out.source = std::move(source);
  if (!f.quiet) print_data(command, f, *out.dataset);
  return out;
}

TrainingData read_training_data(const TrainingFlags& f, const tokenizer::Tokenizer& tok,
                                int64_t n_ctx, const std::string& command) {
  return tokenize_training_data(f, read_data_file(f), tok, n_ctx, command);
}

train::TrainOptions training_options(const TrainingFlags& f, int64_t n_ctx) {
  train::TrainOptions options;
  options.steps = f.steps;
  options.n_seq = f.batch;
  options.n_pos = n_ctx;
  options.accum = f.accum;
  options.adamw = {f.lr, f.beta1, f.beta2, f.eps, f.weight_decay};
  options.schedule.lr = f.lr;
  options.schedule.min_lr = f.min_lr >= 0.0 ? f.min_lr : f.lr / 10.0;
  options.schedule.warmup = f.warmup;
  options.schedule.total = f.steps;
  options.schedule.cosine = f.schedule == "cosine";
  options.grad_clip = f.grad_clip;
  options.seed = f.seed;
  options.eval_every = f.eval_every;
  options.eval_batches = f.eval_batches;
  options.save_every = f.save_every;
  options.matmul_mode = f.compute_type == "bf16"  ? MatmulMode::TrainBf16
                        : f.compute_type == "f16" ? MatmulMode::TrainF16
                                                  : MatmulMode::Train;
  options.loss_scaling = f.compute_type == "f16";
  options.lora_dropout = static_cast<float>(f.lora_dropout);
  options.shard_optimizer = f.shard_optimizer;
  options.overlap_reduction = !f.no_overlap;
  return options;
}

void run_training(const std::string& command, train::ParamStore<float>& store,
                  const TrainingData& data_in, const TrainingFlags& f, int64_t n_ctx,
                  const std::string& out_path, train::RunDescription run,
                  const std::function<void()>& save_outputs) {
  const train::Dataset& data = *data_in.dataset;
  run.push_back({"data", data_in.signature});
  for (const auto& [name, value] : std::initializer_list<std::pair<const char*, std::string>>{
           {"batch", std::to_string(f.batch)},
           {"ctx", std::to_string(n_ctx)},
           {"accum", std::to_string(f.accum)},
           {"seed", std::to_string(f.seed)},
           {"pack", f.pack ? "yes" : "no"},
           {"train-on-prompt", f.train_on_prompt ? "yes" : "no"}})
    run.push_back({name, value});

  train::Communicator& group = process_group();
  const bool leader = group.rank() == 0;  // prints and writes (the others are quiet)
  // The ranks on one machine share its cores.
  ThreadPool pool(f.threads > 0 ? f.threads
                                : std::max(1, default_thread_count() / group.local_size()));
  train::Trainer trainer(store, data, training_options(f, n_ctx),
                         Compute{pool, cpu::host_backend()}, &group);
  if (!f.resume.empty()) {
    const train::TrainerState state = train::load_checkpoint(f.resume, store, run);
    if (state.step >= f.steps)
      fail("--resume ", f.resume, ": the checkpoint is at step ", state.step, ", and --steps is ",
           f.steps, "; raise --steps to train further");
    trainer.restore(state);
    if (!f.quiet)
      std::fprintf(stderr, "%s: resumed from %s at step %lld\n", command.c_str(),
                   train::checkpoint_file(f.resume).c_str(), static_cast<long long>(state.step));
  }
  const std::string checkpoint_dir = f.checkpoint_directory(out_path);
  // --metrics: a log, appended to on --resume, one flushed line per step.
  std::ofstream metrics;
  if (!f.metrics_path.empty()) {
    if (leader) {
      metrics.open(f.metrics_path, f.resume.empty() ? std::ios::trunc : std::ios::app);
      if (!metrics) fail("--metrics ", f.metrics_path, ": cannot open for writing");
    }
    // On every rank: a telemetry step's gradient sum is a different collective.
    trainer.set_tensor_stats(f.metrics_every);
    trainer.set_taps(f.taps);
  }
  // --plot / --plot-grads: kept in memory, so they need no --metrics file.
  TrainingPlots plots(f.plot_path, f.plot_grads_path, str(command, ": ", out_path));
  if (!f.resume.empty()) plots.resume_from(f.metrics_path, trainer.steps_done());
  if (!f.plot_grads_path.empty()) trainer.set_tensor_stats(f.metrics_every);
  const TrainingPlots::WriteOnError plots_on_error(plots);
  auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };

  const bool tty = isatty(fileno(stderr));
  const int64_t line_every = std::max<int64_t>(1, f.steps / 50);
  double last_val = -1.0;
  int64_t last_val_step = 0;
  trainer.run(
      [&](const train::StepReport& r) {
        if (r.val_loss >= 0.0) last_val = r.val_loss, last_val_step = r.step;
        plots.add(r);
        if (metrics.is_open()) {
          nlohmann::json line = {{"step", r.step},
                                 {"loss", number(r.loss)},
                                 {"lr", r.lr},
                                 {"tokens_per_s", r.tokens_per_s},
                                 {"grad_norm", number(r.grad_norm)},
                                 {"loss_scale", r.loss_scale},
                                 {"seconds", r.seconds}};
          if (r.skipped) line["skipped"] = true;
          if (r.val_loss >= 0.0) line["val_loss"] = r.val_loss;
          if (!r.tensors.empty()) {
            nlohmann::json tensors = nlohmann::json::object();
            for (const train::TensorStats& t : r.tensors)
              tensors[t.name] = {
                  {"grad_norm", number(t.grad_norm)},
                  {"update_ratio", t.update_ratio >= 0 ? number(t.update_ratio) : nlohmann::json()},
                  {"drift", t.drift >= 0 ? number(t.drift) : nlohmann::json()}};
            line["tensors"] = std::move(tensors);
          }
          if (!r.taps.empty()) {
            nlohmann::json taps = nlohmann::json::object();
            for (const TapStats& t : r.taps)
              taps[t.name] = {{"mean", t.mean()},
                              {"rms", t.rms()},
                              {"max_abs", t.max_abs},
                              {"nonfinite", t.nonfinite},
                              {"count", t.count}};
            line["taps"] = std::move(taps);
          }
          metrics << line.dump() << '\n' << std::flush;
        }
        if (f.quiet) return;
        const double eta =
            r.tokens_per_s > 0.0 ? r.seconds / double(r.step) * double(f.steps - r.step) : -1.0;
        // A validation loss from an earlier step says which step, so it does not read as new.
        char val[48] = "-";
        if (r.val_loss >= 0.0) {
          std::snprintf(val, sizeof(val), "%.4f", r.val_loss);
        } else if (last_val >= 0.0) {
          std::snprintf(val, sizeof(val), "%.4f (step %lld)", last_val,
                        static_cast<long long>(last_val_step));
        }
        // f16's dynamic loss scale, and whether this step's gradients overflowed.
        char scale[64] = "";
        if (f.compute_type == "f16")
          std::snprintf(scale, sizeof(scale), " | scale %g%s", r.loss_scale,
                        r.skipped ? " (overflow: step skipped)" : "");
        char line[320];
        std::snprintf(line, sizeof(line),
                      "step %lld/%lld | loss %.4f | val %s | lr %.2e | grad %.3f%s | %.0f tok/s | "
                      "ETA %s",
                      static_cast<long long>(r.step), static_cast<long long>(f.steps), r.loss, val,
                      r.lr, r.grad_norm, scale, r.tokens_per_s, format_duration(eta).c_str());
        if (tty) {
          std::fprintf(stderr, "\r%-110s%s", line, r.val_loss >= 0.0 || r.skipped ? "\n" : "");
        } else if (r.step % line_every == 0 || r.val_loss >= 0.0 || r.skipped ||
                   r.step == f.steps) {
          std::fprintf(stderr, "%s\n", line);
        }
      },
      [&](int64_t step) {
        // Under ZeRO-1 rank 0 gathers the moments from their ranks as it writes them.
        const train::MomentSource moments = trainer.checkpoint_moments();
        if (!leader) {
          if (moments) train::send_checkpoint_moments(store, moments);
          return;
        }
        save_outputs();
        train::save_checkpoint(checkpoint_dir, store, trainer.state(), run, moments);
        plots.write();
        if (!f.quiet)
          std::fprintf(stderr, "%s%s: step %lld: wrote %s and the checkpoint %s\n", tty ? "\n" : "",
                       command.c_str(), static_cast<long long>(step), out_path.c_str(),
                       train::checkpoint_file(checkpoint_dir).c_str());
      });
  if (!f.quiet && tty) std::fprintf(stderr, "\n");

  const double tokens_per_s = trainer.tokens_per_s();
  const double train_loss = trainer.estimate_train_loss(f.eval_batches);
  const double val_loss = data.val_windows() > 0 ? trainer.evaluate_val(0) : NAN;
  const train::MomentSource moments = trainer.checkpoint_moments();
  if (!leader) {
    if (f.save_every > 0 && moments) train::send_checkpoint_moments(store, moments);
    return;
  }
  save_outputs();
  if (f.save_every > 0)
    train::save_checkpoint(checkpoint_dir, store, trainer.state(), run, moments);
  plots.set_final(trainer.steps_done(), train_loss, val_loss);
  plots.write();
  if (metrics.is_open())
    metrics << nlohmann::json{{"final", true},
                              {"step", trainer.steps_done()},
                              {"train_loss", number(train_loss)},
                              {"val_loss", number(val_loss)},
                              {"tokens_per_s", tokens_per_s}}
                   .dump()
            << '\n'
            << std::flush;
  if (!f.quiet) {
    std::fprintf(stderr, "%s: wrote %s\n", command.c_str(), out_path.c_str());
    // The periodic evaluations sample --eval-batches batches; the final one reads the whole
    // held-out split, so the two can differ.
    std::fprintf(stderr,
                 "%s: final val_loss over the whole held-out split (%lld windows), train_loss "
                 "over %lld sampled batches (--eval-batches)%s\n",
                 command.c_str(), static_cast<long long>(data.val_windows()),
                 static_cast<long long>(f.eval_batches),
                 f.eval_every > 0 ? "; periodic val losses sampled --eval-batches batches" : "");
    if (group.size() > 1) {
      // Waiting is what the steps lost; the backward hid the rest of the reduction.
      char overlap[128];
      if (trainer.overlaps_reduction()) {
        std::snprintf(overlap, sizeof(overlap), ", gradients summed during the backward (%.3f s)",
                      trainer.overlapped_seconds());
      } else {
        std::snprintf(overlap, sizeof(overlap), ", gradients summed after the backward%s",
                      f.no_overlap ? "" : " (MPI gives no MPI_THREAD_SERIALIZED)");
      }
      std::fprintf(stderr,
                   "%s: data parallel over %d MPI ranks x %d threads%s%s: %.3f s of %.3f s of "
                   "training steps waiting for collectives (%.1f %%)\n",
                   command.c_str(), group.size(), pool.size(),
                   f.shard_optimizer ? ", optimizer sharded (ZeRO-1)" : "", overlap,
                   trainer.comm_seconds(), trainer.state().train_seconds,
                   100.0 * trainer.comm_seconds() / std::max(1e-9, trainer.state().train_seconds));
    }
  }
  std::printf("final: steps %lld train_loss %.4f val_loss %.4f tokens_per_s %.0f\n",
              static_cast<long long>(trainer.steps_done()), train_loss, val_loss, tokens_per_s);
}

}  // namespace toy::cli
