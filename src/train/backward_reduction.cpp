#include "train/backward_reduction.h"

#include <algorithm>

#include "core/error.h"
#include "core/timer.h"

namespace toy::train {

BackwardReduction::BackwardReduction(DataParallel& dp,
                                     const std::vector<std::vector<ElementRange>>& stages)
    : dp_(dp), n_layer_(int64_t(stages.size()) - 2) {
  TOY_CHECK(n_layer_ >= 0, "gradient stages");
  // The stages in the backward's order: the head, layers n_layer-1 … 0, the rest.
  std::vector<int64_t> order = {n_layer_};
  for (int64_t il = n_layer_ - 1; il >= 0; --il) order.push_back(il);
  order.push_back(n_layer_ + 1);
  arrived_.assign(order.size(), 0);
  Bucket bucket;
  int64_t size = 0;
  for (size_t pos = 0; pos < order.size(); ++pos) {
    for (const ElementRange& r : stages[size_t(order[pos])]) {
      bucket.ranges.push_back(r);
      size += r.second - r.first;
    }
    if (size < kMinBucket && pos + 1 < order.size()) continue;
    std::sort(bucket.ranges.begin(), bucket.ranges.end());
    std::vector<ElementRange> merged;
    for (const ElementRange& r : bucket.ranges) {
      if (!merged.empty() && merged.back().second == r.first) {
        merged.back().second = r.second;
      } else {
        merged.push_back(r);
      }
    }
    bucket.ranges = std::move(merged);
    bucket.ready_at = pos;
    buckets_.push_back(std::move(bucket));
    bucket = Bucket{};
    size = 0;
  }
  thread_ = std::thread([this] { loop(); });
}

BackwardReduction::~BackwardReduction() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

size_t BackwardReduction::position(int64_t stage) const {
  TOY_CHECK(stage >= 0 && stage <= n_layer_ + 1, "stage ", stage);
  if (stage == n_layer_) return 0;
  if (stage == n_layer_ + 1) return size_t(n_layer_ + 1);
  return size_t(n_layer_ - stage);
}

void BackwardReduction::begin(float* grads, bool full, int replicas,
                              std::function<void(int64_t, int64_t)> prepare) {
  {
    std::lock_guard lock(mutex_);
    TOY_CHECK(!active_ && replicas >= 1, "a reduction already under way");
    grads_ = grads;
    full_ = full;
    expected_ = replicas;
    prepare_ = std::move(prepare);
    std::fill(arrived_.begin(), arrived_.end(), 0);
    active_ = true;
  }
  wake_.notify_all();
}

void BackwardReduction::stage_done(int64_t stage) {
  const size_t pos = position(stage);
  bool ready = false;
  {
    std::lock_guard lock(mutex_);
    ready = ++arrived_[pos] == expected_;
  }
  if (ready) wake_.notify_all();
}

void BackwardReduction::finish() {
  Timer timer;
  std::unique_lock lock(mutex_);
  // The backward has returned in every replica: whatever was not reported is final too.
  std::fill(arrived_.begin(), arrived_.end(), expected_);
  wake_.notify_all();
  idle_.wait(lock, [&] { return !active_; });
  wait_seconds_ += timer.seconds();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void BackwardReduction::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || active_; });
    if (stop_) return;
    double busy = 0.0;
    try {
      for (const Bucket& bucket : buckets_) {
        wake_.wait(lock, [&] { return stop_ || arrived_[bucket.ready_at] >= expected_; });
        if (stop_) return;
        lock.unlock();
        for (const auto& [begin, end] : bucket.ranges) {
          if (prepare_) prepare_(begin, end);
          Timer timer;
          dp_.reduce_range(grads_, begin, end, full_);
          busy += timer.seconds();
        }
        lock.lock();
      }
    } catch (...) {
      // A failed collective: the step cannot go on; finish() reports it.
      if (!lock.owns_lock()) lock.lock();
      error_ = std::current_exception();
    }
    busy_seconds_ += busy;
    active_ = false;
    prepare_ = nullptr;
    idle_.notify_all();
  }
}

}  // namespace toy::train
