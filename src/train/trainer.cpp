#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "core/timer.h"
#include "kernels/cpu/features.h"

namespace toy::train {

Trainer::Trainer(ParamStore<float>& store, const Dataset& data, const TrainOptions& options,
                 ThreadPool& pool)
    : Trainer(store, data, options, Compute{pool, cpu::host_backend()}) {}

Trainer::Trainer(ParamStore<float>& store, const Dataset& data, const TrainOptions& options,
                 const Compute& compute, Communicator* group)
    : store_(store),
      data_(data),
      options_(options),
      pool_(compute.pool),
      cpu_(compute.cpu),
      alone_(group ? nullptr : single_process()),
      dp_(group ? *group : *alone_, store.total(), kBlock, options.shard_optimizer),
      rng_(options.seed),
      eval_rng_(options.seed ^ 0x5DEECE66Dull) {
  TOY_CHECK(options.accum >= 1 && options.steps >= 0, "accum ", options.accum);
  if (options.loss_scaling) loss_scale_ = options.loss_scale_init;
  // This rank's rows of every batch, split further over its thread replicas.
  const int64_t rank_first = dp_.first_row(options.n_seq);
  const int64_t rank_rows = dp_.row_count(options.n_seq);
  const int64_t n_replicas = rank_rows >= pool_.size() ? pool_.size() : 1;
  for (int64_t r = 0; r < n_replicas; ++r) {
    Replica replica;
    replica.first_seq = rank_first + rank_rows * r / n_replicas;
    const int64_t n_seq = rank_first + rank_rows * (r + 1) / n_replicas - replica.first_seq;
    replica.model = std::make_unique<TrainModel<float>>(store, n_seq, options.n_pos);
    replica.model->set_matmul_mode(options.matmul_mode);
    if (n_replicas > 1) replica.local = std::make_unique<ThreadPool>(1);
    if (r > 0) {
      replica.grads = std::make_unique<GradBuffer<float>>(store);
      replica.model->set_gradients(replica.grads->data());
    }
    replicas_.push_back(std::move(replica));
  }
  store.zero_grads();
  // AdamW's moments: this rank's shard only under ZeRO-1.
  store.use_moments(dp_.shard_begin(), dp_.shard_end());
  Communicator& comm = group ? *group : *alone_;
  if (options.overlap_reduction && dp_.size() > 1 && comm.any_thread())
    overlap_ = std::make_unique<BackwardReduction>(dp_, gradient_stages(store));
}

double Trainer::comm_waited() const {
  return dp_.comm_seconds() + (overlap_ ? overlap_->wait_seconds() : 0.0);
}

CrossEntropyResult Trainer::run_batch(double grad_scale, uint64_t dropout_stream, bool reduce,
                                      bool full) {
  const int64_t T = options_.n_pos;
  reduce = reduce && overlap_ && grad_scale > 0.0;
  if (reduce) {
    // The communication thread first adds the replicas' gradients of a range into the
    // store's, in replica order (as reduce_gradients would), and zeros them.
    std::function<void(int64_t, int64_t)> sum_replicas;
    if (replicas_.size() > 1)
      sum_replicas = [this](int64_t begin, int64_t end) {
        float* grads = store_.grads();
        for (size_t r = 1; r < replicas_.size(); ++r) {
          float* g = replicas_[r].grads->data();
          for (int64_t i = begin; i < end; ++i) grads[i] += g[i];
          std::fill(g + begin, g + end, 0.0f);
        }
      };
    overlap_->begin(store_.grads(), full, int(replicas_.size()), std::move(sum_replicas));
    for (Replica& replica : replicas_)
      replica.model->set_stage_hook([this](int64_t stage) { overlap_->stage_done(stage); });
  }
  std::vector<CrossEntropyResult> results(replicas_.size());
  auto work = [&](size_t r, ThreadPool& pool) {
    const Compute cx{pool, cpu_};
    Replica& replica = replicas_[r];
    const int64_t offset = replica.first_seq * T;
    replica.model->set_lora_dropout(grad_scale > 0.0 ? options_.lora_dropout : 0.0f, dropout_stream,
                                    offset);
    results[r] = replica.model->forward(
        batch_.tokens.data() + offset, batch_.targets.data() + offset,
        batch_.positions.empty() ? nullptr : batch_.positions.data() + offset,
        batch_.segment.empty() ? nullptr : batch_.segment.data() + offset, cx);
    if (grad_scale > 0.0) replica.model->backward(grad_scale, cx);
  };
  if (replicas_.size() == 1) {
    work(0, pool_);
  } else {
    pool_.run([&](int t, int) {
      if (static_cast<size_t>(t) < replicas_.size()) work(t, *replicas_[t].local);
    });
  }
  if (reduce) {
    for (Replica& replica : replicas_) replica.model->set_stage_hook(nullptr);
    // Before any other collective: one thread calls MPI at a time.
    overlap_->finish();
    reduced_ = true;
  }
  CrossEntropyResult total;
  for (const CrossEntropyResult& r : results) {
    total.loss_sum += r.loss_sum;
    total.counted += r.counted;
  }
  if (dp_.size() > 1) {
    // Counts below 2^53 are exact in a double.
    double sums[2] = {total.loss_sum, double(total.counted)};
    dp_.sum(sums, 2);
    total.loss_sum = sums[0];
    total.counted = static_cast<int64_t>(sums[1]);
  }
  return total;
}

StepReport Trainer::step() {
  Timer timer;
  const bool stats = stats_every_ > 0 && (step_ + 1) % stats_every_ == 0;
  if (stats && taps_) {
    taps_->reset();
    replicas_[0].model->set_taps(taps_.get());
  }
  const double comm_before = comm_waited();
  double loss_sum = 0.0;  // gradients are zero here (constructor, update_parameters)
  for (int64_t micro = 0; micro < options_.accum; ++micro) {
    data_.sample_train(batch_, options_.n_seq, rng_);
    int64_t counted = 0;
    for (int32_t t : batch_.targets) counted += t >= 0;
    TOY_CHECK(counted > 0, "a training batch with no counted positions");
    // A fresh dropout mask per micro-step, fixed by (seed, step, micro-step): a resumed run
    // draws the same masks.
    const uint64_t stream = options_.seed * 0x9E3779B97F4A7C15ull ^
                            (uint64_t(step_) << 20 | uint64_t(micro)) * 0xC2B2AE3D27D4EB4Full;
    // The last micro-batch's backward finishes the gradients: their sum over the ranks
    // starts during it (telemetry reads every tensor's: a sharded run sums all of them then).
    const CrossEntropyResult r =
        run_batch(loss_scale_ / (double(counted) * double(options_.accum)), stream,
                  /*reduce=*/micro + 1 == options_.accum, /*full=*/stats);
    loss_sum += r.loss_sum / double(r.counted);
  }
  if (taps_) replicas_[0].model->set_taps(nullptr);
  if (!std::isfinite(loss_sum)) fail_nonfinite_loss();
  StepReport report;
  if (stats && taps_) report.taps = taps_->stats();
  report.lr = options_.schedule.at(step_);
  ++step_;
  // Telemetry reads every tensor's gradient: a sharded run sums all of them on that step.
  report.grad_norm = reduce_gradients(/*full=*/stats) / loss_scale_;
  if (!std::isfinite(report.grad_norm)) {
    if (!options_.loss_scaling) fail_nonfinite_gradient();
    // Overflow somewhere in the scaled backward: drop the step, back off the scale.
    store_.zero_grads();
    loss_scale_ /= 2.0;
    clean_steps_ = 0;
    ++skipped_;
    report.skipped = true;
  } else {
    // The clip factor also undoes the loss scale, in the one pass over the gradients.
    const double clip = options_.grad_clip > 0.0 && report.grad_norm > options_.grad_clip
                            ? options_.grad_clip / (report.grad_norm + 1e-6)
                            : 1.0;
    if (stats) begin_tensor_stats(report);
    update_parameters(report.lr, clip / loss_scale_);
    if (stats) end_tensor_stats(report);
    if (options_.loss_scaling && ++clean_steps_ >= options_.loss_scale_interval) {
      loss_scale_ *= 2.0;
      clean_steps_ = 0;
    }
  }
  report.loss_scale = loss_scale_;
  report.step = step_;
  report.loss = loss_sum / double(options_.accum);
  train_seconds_ += timer.seconds();
  wall_seconds_ += timer.seconds();
  step_comm_seconds_ += comm_waited() - comm_before;
  report.tokens_per_s = tokens_per_s();
  report.seconds = wall_seconds_;
  return report;
}

// Sums the replicas' gradients into the store's (in replica order) and zeros them, then
// the ranks' (train/data_parallel.h), unless the backward did both; the squared norm in
// fixed blocks summed in order. One parallel region for one process.
double Trainer::reduce_gradients(bool full) {
  const int64_t total = store_.total();
  const int64_t blocks = (total + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
  float* grads = store_.grads();
  const bool alone = dp_.size() == 1;
  const bool reduced = std::exchange(reduced_, false);
  if (!reduced)
    pool_.parallel_for(blocks, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t first = b * kBlock, last = std::min(total, first + kBlock);
        for (size_t r = 1; r < replicas_.size(); ++r) {
          float* g = replicas_[r].grads->data();
          for (int64_t i = first; i < last; ++i) grads[i] += g[i];
          std::fill(g + first, g + last, 0.0f);
        }
        if (alone) partial[b] = squared_norm(grads + first, last - first);
      }
    });
  if (!alone) {
    if (!reduced) dp_.reduce_gradients(grads, full);
    // The blocks whose sums this rank holds; a sharded run adds the other ranks' partials
    // (exact: every block's partial comes from one rank, the others add zeros).
    const bool own_only = dp_.sharded() && !full;
    const int64_t lo = own_only ? dp_.shard_begin() / kBlock : 0;
    const int64_t hi = own_only ? (dp_.shard_end() + kBlock - 1) / kBlock : blocks;
    pool_.parallel_for(hi - lo, [&](int64_t begin, int64_t end) {
      for (int64_t b = lo + begin; b < lo + end; ++b) {
        const int64_t first = b * kBlock, last = std::min(total, first + kBlock);
        partial[b] = squared_norm(grads + first, last - first);
      }
    });
    if (own_only) dp_.sum(partial.data(), blocks);
  }
  double sum = 0.0;
  for (double p : partial) sum += p;
  return std::sqrt(sum);
}

// One parallel region: clip, AdamW on every tensor's part in the thread's blocks
// (decay on 2-D tensors), and zero the gradients for the next step. A sharded run
// updates its own blocks and then gathers the others'.
void Trainer::update_parameters(double lr, double clip) {
  const int64_t total = store_.total();
  const int64_t lo = dp_.shard_begin(), hi_elem = dp_.shard_end();
  TOY_CHECK(store_.moments_begin() == lo && store_.moments_end() == hi_elem,
            "the store's moments are not this rank's shard");
  const int64_t blocks = (hi_elem - lo + kBlock - 1) / kBlock;
  float* grads = store_.grads();
  pool_.parallel_for(blocks, [&](int64_t begin, int64_t end) {
    const int64_t first = lo + begin * kBlock, last = std::min(hi_elem, lo + end * kBlock);
    if (clip != 1.0)
      for (int64_t i = first; i < last; ++i) grads[i] = float(double(grads[i]) * clip);
    for (const ParamTensor& p : store_.tensors()) {
      const int64_t a = std::max(first, p.offset), b = std::min(last, p.offset + p.numel);
      if (a >= b) continue;
      // The moments hold [lo, hi_elem) (the whole store, or this rank's shard).
      adamw_update(store_.params() + a, grads + a, store_.moment1() + (a - lo),
                   store_.moment2() + (a - lo), b - a, options_.adamw, lr, step_ - skipped_,
                   p.decay);
    }
    std::fill(grads + first, grads + last, 0.0f);
  });
  if (dp_.sharded()) {
    // The other shards' gradients were summed into by this rank's backward too.
    std::fill(grads, grads + lo, 0.0f);
    std::fill(grads + hi_elem, grads + total, 0.0f);
    dp_.gather_params(store_.params());
  }
}

MomentSource Trainer::checkpoint_moments() {
  if (!dp_.sharded()) return nullptr;
  return [this](int moment, int64_t begin, int64_t end, float* dst) {
    dp_.gather_to_root(moment == 1 ? store_.moment1() : store_.moment2(), begin, end, dst);
  };
}

void Trainer::set_taps(const std::string& list) {
  taps_ = list.empty() ? nullptr : std::make_unique<LayerTaps>(list);
  if (taps_) taps_->check_layers(store_.config().n_layer);
}

void Trainer::fail_nonfinite_loss() {
  // The batch again with every point tapped in every replica, to say where it began.
  const std::string at = str("the training loss is not finite at step ", step_ + 1);
  const std::string hint =
      str("; lower --lr (", options_.adamw.lr, ") or --init-scale, or enable --grad-clip");
  std::vector<std::unique_ptr<LayerTaps>> all;
  for (Replica& r : replicas_) {
    all.push_back(
        std::make_unique<LayerTaps>("attn_norm,attn_out,resid_mid,ffn_norm,ffn_out,resid_post"));
    r.model->set_taps(all.back().get());
  }
  run_batch(0.0);
  for (Replica& r : replicas_) r.model->set_taps(nullptr);
  const TapStats* first = nullptr;
  for (const auto& taps : all) {
    const TapStats* f = taps->first_nonfinite();
    if (f && (!first || f->before(*first))) first = f;
  }
  if (first)
    fail(at, ": the first non-finite activation is ", first->name, " (", first->nonfinite, " of ",
         first->count, " values)", hint);
  fail(at, ": the layers' activations are finite, so the output head or the loss overflowed", hint);
}

void Trainer::fail_nonfinite_gradient() {
  for (const ParamTensor& p : store_.tensors()) {
    const float* g = store_.grads() + p.offset;
    const int64_t bad = std::count_if(g, g + p.numel, [](float v) { return !std::isfinite(v); });
    if (bad > 0)
      fail("the gradient of ", p.spec.name, " is not finite at step ", step_, " (", bad, " of ",
           p.numel, " values); lower --lr (", options_.adamw.lr,
           "), enable --grad-clip, or use --compute-type f32");
  }
  fail("the gradient norm is not finite at step ", step_, " (a sum overflowed)");
}

void Trainer::set_tensor_stats(int64_t every) {
  stats_every_ = every;
  if (every > 0) initial_.assign(store_.params(), store_.params() + store_.total());
}

// Gradient norms (before clipping, without the loss scale) and a copy of the parameters
// before the update.
void Trainer::begin_tensor_stats(StepReport& report) {
  report.tensors.clear();
  for (const ParamTensor& p : store_.tensors())
    report.tensors.push_back(
        {p.spec.name, std::sqrt(squared_norm(store_.grads() + p.offset, p.numel)) / loss_scale_,
         0.0, 0.0});
  snapshot_.assign(store_.params(), store_.params() + store_.total());
}

void Trainer::end_tensor_stats(StepReport& report) {
  const float* w = store_.params();
  for (size_t t = 0; t < store_.tensors().size(); ++t) {
    const ParamTensor& p = store_.tensors()[t];
    double update = 0.0, before = 0.0, drift = 0.0, start = 0.0;
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
      const double now = w[i], old = snapshot_[size_t(i)], first = initial_[size_t(i)];
      update += (now - old) * (now - old);
      before += old * old;
      drift += (now - first) * (now - first);
      start += first * first;
    }
    report.tensors[t].update_ratio = before > 0.0 ? std::sqrt(update / before) : -1.0;
    report.tensors[t].drift = start > 0.0 ? std::sqrt(drift / start) : -1.0;
  }
}

TrainerState Trainer::state() const {
  TrainerState s;
  s.step = step_;
  std::ostringstream rng, eval_rng;
  rng << rng_;
  eval_rng << eval_rng_;
  s.rng = rng.str();
  s.eval_rng = eval_rng.str();
  s.train_seconds = train_seconds_;
  s.wall_seconds = wall_seconds_;
  s.loss_scale = loss_scale_;
  s.clean_steps = clean_steps_;
  s.skipped = skipped_;
  return s;
}

void Trainer::restore(const TrainerState& s) {
  std::istringstream rng(s.rng), eval_rng(s.eval_rng);
  rng >> rng_;
  eval_rng >> eval_rng_;
  if (rng.fail() || eval_rng.fail()) fail("the checkpoint's random-number state is unreadable");
  step_ = s.step;
  train_seconds_ = s.train_seconds;
  wall_seconds_ = s.wall_seconds;
  if (options_.loss_scaling) {
    loss_scale_ = s.loss_scale;
    clean_steps_ = s.clean_steps;
  }
  skipped_ = s.skipped;
}

double Trainer::tokens_per_s() const {
  const double tokens = double(step_) * double(options_.accum * options_.n_seq * options_.n_pos);
  return train_seconds_ > 0.0 ? tokens / train_seconds_ : 0.0;
}

double Trainer::evaluate_val(int64_t max_batches) {
  Timer timer;
  const int64_t windows = data_.val_windows();
  int64_t batches = (windows + options_.n_seq - 1) / options_.n_seq;
  if (max_batches > 0) batches = std::min(batches, max_batches);
  double loss_sum = 0.0;
  int64_t counted = 0;
  for (int64_t i = 0; i < batches; ++i) {
    // Spread a partial evaluation over the whole tail rather than its start.
    const int64_t first = windows <= batches * options_.n_seq
                              ? i * options_.n_seq
                              : (windows - options_.n_seq) * i / std::max<int64_t>(1, batches - 1);
    data_.val_batch(batch_, options_.n_seq, first);
    const CrossEntropyResult r = run_batch(0.0);
    loss_sum += r.loss_sum;
    counted += r.counted;
  }
  wall_seconds_ += timer.seconds();
  return counted > 0 ? loss_sum / double(counted) : -1.0;
}

double Trainer::estimate_train_loss(int64_t batches) {
  Timer timer;
  double loss_sum = 0.0;
  int64_t counted = 0;
  for (int64_t i = 0; i < batches; ++i) {
    data_.sample_train(batch_, options_.n_seq, eval_rng_);
    const CrossEntropyResult r = run_batch(0.0);
    loss_sum += r.loss_sum;
    counted += r.counted;
  }
  wall_seconds_ += timer.seconds();
  return counted > 0 ? loss_sum / double(counted) : -1.0;
}

void Trainer::run(const std::function<void(const StepReport&)>& on_step,
                  const std::function<void(int64_t)>& on_save) {
  while (step_ < options_.steps) {
    StepReport report = step();
    const bool last = step_ == options_.steps;
    if (options_.eval_every > 0 && data_.val_windows() > 0 &&
        (step_ % options_.eval_every == 0 || last))
      report.val_loss = evaluate_val(options_.eval_batches);
    report.seconds = wall_seconds_;
    if (on_step) on_step(report);
    if (on_save && options_.save_every > 0 && step_ % options_.save_every == 0 && !last)
      on_save(step_);
  }
}

}  // namespace toy::train
