#include "train/trainer.h"

#include <cmath>

#include "core/error.h"
#include "core/timer.h"

namespace toy::train {

Trainer::Trainer(ParamStore<float>& store, const Dataset& data, const TrainOptions& options,
                 ThreadPool& pool)
    : store_(store),
      data_(data),
      options_(options),
      pool_(pool),
      model_(store, options.n_seq, options.n_pos),
      rng_(options.seed),
      eval_rng_(options.seed ^ 0x5DEECE66Dull) {
  TOY_CHECK(options.accum >= 1 && options.steps >= 0, "accum ", options.accum);
}

StepReport Trainer::step() {
  Timer timer;
  store_.zero_grads();
  double loss_sum = 0.0;
  for (int64_t micro = 0; micro < options_.accum; ++micro) {
    data_.sample_train(batch_, options_.n_seq, rng_);
    const CrossEntropyResult r = model_.forward(batch_.tokens.data(), batch_.targets.data(), pool_);
    TOY_CHECK(r.counted > 0, "a training batch with no counted positions");
    loss_sum += r.loss_sum / double(r.counted);
    model_.backward(1.0 / (double(r.counted) * double(options_.accum)), pool_);
  }
  if (!std::isfinite(loss_sum))
    fail("the training loss is not finite at step ", step_ + 1, "; lower --lr (", options_.adamw.lr,
         ") or --init-scale, or enable --grad-clip");
  StepReport report;
  report.grad_norm = grad_norm(store_, pool_);
  clip_by_global_norm(store_.grads(), store_.total(), report.grad_norm, options_.grad_clip);
  report.lr = options_.schedule.at(step_);
  ++step_;
  adamw_step(store_, options_.adamw, report.lr, step_, &pool_);
  report.step = step_;
  report.loss = loss_sum / double(options_.accum);
  train_seconds_ += timer.seconds();
  wall_seconds_ += timer.seconds();
  report.tokens_per_s = tokens_per_s();
  report.seconds = wall_seconds_;
  return report;
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
    const CrossEntropyResult r = model_.forward(batch_.tokens.data(), batch_.targets.data(), pool_);
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
    const CrossEntropyResult r = model_.forward(batch_.tokens.data(), batch_.targets.data(), pool_);
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
