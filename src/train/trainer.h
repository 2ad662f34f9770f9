// The training loop: random batches, forward/backward with gradient
// accumulation, global gradient-norm clipping, the learning-rate schedule and
// AdamW, periodic validation and checkpoint callbacks (the loop of nanoGPT's
// train.py / llm.c's train_gpt2.c).
//
// Threads: when the batch has at least as many sequences as the pool has
// threads, each thread runs the whole model on its own slice of the batch
// (data parallel, single-threaded kernels, its own gradient buffer, summed in
// thread order) — one synchronization per micro-step instead of one per op,
// which keeps two threads busy even on a shared, oversubscribed machine.
// Otherwise the kernels split each op across the pool.
//
// Processes: with a Communicator of N ranks (mpirun), each rank trains its B/N rows
// of the same global batch and the ranks' gradients are summed (train/data_parallel.h),
// layer by layer while the backward of a step's last micro-batch runs
// (train/backward_reduction.h); every rank then holds the same parameters.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/compute.h"
#include "model/taps.h"
#include "train/backward_reduction.h"
#include "train/communicator.h"
#include "train/data_parallel.h"
#include "train/dataset.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/params.h"

namespace toy::train {

struct TrainOptions {
  int64_t steps = 1;
  int64_t n_seq = 1;  // batch B (sequences per micro-step)
  int64_t n_pos = 1;  // context T
  int64_t accum = 1;  // micro-steps per optimizer step
  AdamWConfig adamw;
  LrSchedule schedule;
  double grad_clip = 1.0;  // <= 0: off
  uint64_t seed = 1337;
  int64_t eval_every = 0;     // 0: no periodic validation
  int64_t eval_batches = 20;  // batches of the periodic validation
  int64_t save_every = 0;     // 0: no periodic checkpoints
  // Train (F32), TrainBf16 or TrainF16 (--compute-type): the weight products' arithmetic.
  MatmulMode matmul_mode = MatmulMode::Train;
  // Dynamic loss scaling (PyTorch AMP's GradScaler, on for f16): the loss gradient is scaled
  // by S so small gradients survive F16's range; a step whose gradients overflow (inf/NaN)
  // is skipped and S halved; after loss_scale_interval clean steps in a row S doubles.
  bool loss_scaling = false;
  double loss_scale_init = 65536.0;
  int64_t loss_scale_interval = 2000;
  float lora_dropout = 0.0f;     // PEFT's lora_dropout on the trainable adapters' inputs
  bool shard_optimizer = false;  // ZeRO-1 over the ranks of a process group
  // Over several ranks: sum the gradients while the backward runs (false: after it; also
  // when the communicator cannot be called from a second thread).
  bool overlap_reduction = true;
};

// Per-tensor training telemetry of one step (--metrics-every), keyed by GGUF name.
struct TensorStats {
  std::string name;     // "blk.3.attn_q.weight", "blk.0.attn_q.weight.lora_a"
  double grad_norm;     // ‖g‖ before clipping
  double update_ratio;  // ‖w_after − w_before‖ / ‖w_before‖ (< 0: ‖w_before‖ = 0)
  double drift;  // ‖w − w₀‖ / ‖w₀‖ since the run began (< 0: ‖w₀‖ = 0, e.g. LoRA B)
};

struct StepReport {
  int64_t step = 0;        // 1-based, after the update
  double loss = 0.0;       // mean training loss of the step's batches
  double val_loss = -1.0;  // < 0: not evaluated at this step
  double lr = 0.0;
  double grad_norm = 0.0;            // before clipping (unscaled; inf on a skipped step)
  double loss_scale = 1.0;           // the dynamic loss scale after this step
  bool skipped = false;              // the gradients overflowed: no update this step
  double tokens_per_s = 0.0;         // training tokens / training seconds so far
  double seconds = 0.0;              // wall time so far
  std::vector<TensorStats> tensors;  // filled on the steps set_tensor_stats asks for
  std::vector<TapStats> taps;        // activation taps of those steps (set_taps)
};

// Everything besides the parameters and moments that a resumed run needs to continue
// exactly where a checkpoint left off (train/checkpoint.h).
struct TrainerState {
  int64_t step = 0;
  std::string rng;       // the batch sampler (which also fixes the data position)
  std::string eval_rng;  // the final training-loss estimate's sampler
  double train_seconds = 0.0;
  double wall_seconds = 0.0;
  // Dynamic loss scaling: the scale, clean steps since it last changed, and steps skipped
  // (AdamW's bias correction counts the updates made: step − skipped).
  double loss_scale = 1.0;
  int64_t clean_steps = 0;
  int64_t skipped = 0;
};

// Where a checkpoint's AdamW moments come from when no rank holds them all (ZeRO-1):
// writes elements [begin, end) of moment 1 (m) or 2 (v) of the store's layout to dst on
// rank 0; a collective, called with the same range on every rank (dst null but on rank 0).
using MomentSource = std::function<void(int moment, int64_t begin, int64_t end, float* dst)>;

class Trainer {
 public:
  Trainer(ParamStore<float>& store, const Dataset& data, const TrainOptions& options,
          ThreadPool& pool);
  // With an explicit backend (the ThreadPool form uses cpu::host_backend()), and over the
  // ranks of `group` (null: this process alone). toy::Error when n_seq is not a multiple of
  // the ranks.
  Trainer(ParamStore<float>& store, const Dataset& data, const TrainOptions& options,
          const Compute& compute, Communicator* group = nullptr);

  // One optimizer step.
  StepReport step();
  // Mean validation loss over up to max_batches batches of B windows (all when <= 0).
  double evaluate_val(int64_t max_batches);
  // Mean loss over `batches` random training batches (nanoGPT's estimate_loss).
  double estimate_train_loss(int64_t batches);

  // Runs options.steps steps; on_step after each, on_save(step) every save_every steps.
  void run(const std::function<void(const StepReport&)>& on_step,
           const std::function<void(int64_t)>& on_save);

  int64_t steps_done() const { return step_; }
  // Per-tensor statistics in the report of every `every`-th step (0: never). Keeps a copy of
  // the parameters as they are now (w₀ of the drift).
  void set_tensor_stats(int64_t every);
  // Activation taps (model/taps.h: "attn_norm,blk.3.ffn_out") recorded over the first
  // replica's rows on the steps set_tensor_stats asks for.
  void set_taps(const std::string& list);
  TrainerState state() const;
  // Continues from `state` (the store's parameters and moments restored separately).
  void restore(const TrainerState& state);
  double tokens_per_s() const;
  // The moments of a checkpoint (train/checkpoint.h) under ZeRO-1, where each rank holds
  // its shard's; null when this rank holds them all.
  MomentSource checkpoint_moments();
  // Seconds the training steps waited for collectives between ranks (0 for one process):
  // the reduction the backward did not hide, the loss sums, the sharded update's gathers.
  double comm_seconds() const { return step_comm_seconds_; }
  // Whether the gradients are summed while the backward runs, and the seconds the
  // communication thread spent doing it.
  bool overlaps_reduction() const { return overlap_ != nullptr; }
  double overlapped_seconds() const { return overlap_ ? overlap_->busy_seconds() : 0.0; }

 private:
  // One slice of the batch on one thread.
  struct Replica {
    int64_t first_seq = 0;              // of the batch
    std::unique_ptr<ThreadPool> local;  // a 1-thread pool for its kernels
    std::unique_ptr<TrainModel<float>> model;
    std::unique_ptr<GradBuffer<float>> grads;  // null for replica 0 (the store's own)
  };

  // Forward (and backward when grad_scale > 0, with LoRA dropout masks from
  // dropout_stream) of the batch in batch_ over all replicas; returns the loss sum and count.
  // With `reduce` (a step's last micro-batch, overlap_ on), the gradients are summed over
  // the ranks during the backward: all of them when `full`, else this rank's shard.
  CrossEntropyResult run_batch(double grad_scale, uint64_t dropout_stream = 0, bool reduce = false,
                               bool full = false);
  // Sums the replicas' and ranks' gradients (all of them when `full`, else this rank's shard;
  // unless the backward did) and returns the global gradient norm.
  double reduce_gradients(bool full);
  // The training thread's seconds waiting for collectives so far.
  double comm_waited() const;
  // Stops training with a message naming where the first non-finite value came from: the
  // first tap of the batch's forward that saw one, or the first tensor whose gradient has one.
  [[noreturn]] void fail_nonfinite_loss();
  [[noreturn]] void fail_nonfinite_gradient();
  // Before and after update_parameters on a telemetry step.
  void begin_tensor_stats(StepReport& report);
  void end_tensor_stats(StepReport& report);
  void update_parameters(double lr, double clip);

  static constexpr int64_t kBlock = 1 << 16;  // elements per block of the optimizer regions

  ParamStore<float>& store_;
  const Dataset& data_;
  TrainOptions options_;
  ThreadPool& pool_;
  const cpu::Backend& cpu_;
  std::unique_ptr<Communicator> alone_;  // the group when none was given
  DataParallel dp_;
  std::vector<Replica> replicas_;
  std::unique_ptr<BackwardReduction> overlap_;  // null: the reduction follows the backward
  bool reduced_ = false;                        // the last backward summed the gradients
  std::mt19937_64 rng_;
  std::mt19937_64 eval_rng_;
  Batch batch_;
  int64_t step_ = 0;
  double loss_scale_ = 1.0;  // the dynamic loss scale (1 without loss scaling)
  int64_t clean_steps_ = 0;  // steps since the scale last changed
  int64_t skipped_ = 0;      // steps skipped for overflowing gradients
  int64_t stats_every_ = 0;
  std::unique_ptr<LayerTaps> taps_;  // --tap, fed on telemetry steps
  std::vector<float> initial_;       // (total) w₀ for the drift
  std::vector<float> snapshot_;      // (total) the parameters before a telemetry step's update
  double train_seconds_ = 0.0;
  double wall_seconds_ = 0.0;
  double step_comm_seconds_ = 0.0;
};

}  // namespace toy::train
