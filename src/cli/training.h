// What `toy train` and `toy finetune` share: the optimizer, schedule, batch,
// evaluation, checkpoint and logging flags (nanoGPT's / llm.c's names, with
// HF Trainer's where those are the habit), reading and tokenizing the data
// (text or JSON lines, --val-data or a held-out tail), and the run itself with
// its progress lines, periodic checkpoints, --resume and the final summary.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cli/command_line.h"
#include "cli/files.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/params.h"
#include "train/sft_data.h"
#include "train/trainer.h"

namespace toy::cli {

struct TrainingFlags {
  // Data.
  std::string data_path, val_data_path, dump_tokens;
  double val_fraction = 0.1;
  bool jsonl = false, train_on_prompt = false, pack = false;
  // Run.
  int64_t steps = 1000, batch = 8, accum = 1, warmup = 0;
  int64_t eval_every = 0, eval_batches = 20, save_every = 0;
  double lr = 1e-3, min_lr = -1.0, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.99, eps = 1e-8;
  double grad_clip = 1.0;
  std::string schedule = "cosine", checkpoint_dir, resume, compute_type = "f32";
  std::string metrics_path;    // --metrics FILE.jsonl
  int64_t metrics_every = 10;  // per-tensor statistics every N steps
  std::string taps;            // --tap: activation taps recorded on those steps
  // --plot loss.svg, --plot-grads grads.svg
  std::string plot_path, plot_grads_path;
  uint64_t seed = 1337;
  int threads = 0;
  bool quiet = false;
  double lora_dropout = 0.0;     // set by finetune's --lora-dropout
  bool shard_optimizer = false;  // --shard-optimizer: ZeRO-1 over the MPI ranks
  bool no_overlap = false;       // --no-overlap: reduce the gradients after the backward

  // The options whose defaults a preset may set (CLI::Option::count() says if given).
  CLI::Option *val_opt, *prompt_opt, *pack_opt, *batch_opt, *steps_opt, *lr_opt, *min_lr_opt,
      *schedule_opt, *warmup_opt, *wd_opt, *beta1_opt, *beta2_opt, *clip_opt, *eval_opt;

  bool is_jsonl() const { return jsonl || data_path.ends_with(".jsonl"); }
  // --checkpoint-dir, or OUT.checkpoint next to the output.
  std::string checkpoint_directory(const std::string& out_path) const {
    return checkpoint_dir.empty() ? out_path + ".checkpoint" : checkpoint_dir;
  }
};

// Adds the flags above to `cl` with the given defaults already in `flags`.
void add_training_flags(CommandLine& cl, TrainingFlags& flags);

// Checks after parsing that do not depend on the model: the schedule name, JSON-lines-only
// flags, the output and every input path (before any work), --resume's directory, and
// --batch against the MPI ranks (cli/process_group.h). On ranks other than 0 it then turns
// off everything that prints or writes files (-q, --dump-tokens; run_training writes --metrics
// on rank 0): rank 0 alone reports and writes.
void check_training_flags(TrainingFlags& flags, const NamedPath& output,
                          std::vector<NamedPath> other_inputs);

// The data read and tokenized by `tok` (the output model's tokenizer): --data, with
// --val-data held out or else the --val-fraction tail. Prints what was read unless quiet.
struct TrainingData {
  train::DataSource source;
  std::unique_ptr<train::Dataset> dataset;
  std::string signature;  // file, size and token count, for the checkpoint's run description
};
TrainingData read_training_data(const TrainingFlags& flags, const tokenizer::Tokenizer& tok,
                                int64_t n_ctx, const std::string& command);
// The --data file read as a DataSource (text or JSON lines), before a vocabulary exists.
train::DataSource read_data_file(const TrainingFlags& flags);
TrainingData tokenize_training_data(const TrainingFlags& flags, train::DataSource source,
                                    const tokenizer::Tokenizer& tok, int64_t n_ctx,
                                    const std::string& command);

train::TrainOptions training_options(const TrainingFlags& flags, int64_t n_ctx);

// Trains `store` on the data to the end: restores --resume's checkpoint, prints progress
// (a line per ~2 % of the run on a pipe, a live line on a terminal), every --save-every
// steps calls save_outputs() and writes the checkpoint, then evaluates and prints the
// "final:" line. `run` describes what a checkpoint must match. Under mpirun every rank
// calls it; rank 0 alone prints and writes.
void run_training(const std::string& command, train::ParamStore<float>& store,
                  const TrainingData& data, const TrainingFlags& flags, int64_t n_ctx,
                  const std::string& out_path, train::RunDescription run,
                  const std::function<void()>& save_outputs);

}  // namespace toy::cli
