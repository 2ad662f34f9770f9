// Summing the gradients over the ranks while the backward runs: PyTorch DDP's bucketed
// all-reduce overlapped with the backward (Li et al., "PyTorch Distributed", VLDB 2020).
// The backward reports each stage whose parameter gradients are final (the output head,
// then the layers from the last down: TrainModel::set_stage_hook); a communication thread
// sums those stages' ranges of the gradient buffer over the ranks (DataParallel::
// reduce_range) while the backward goes on with the layers below, and the rest (token
// embeddings, final only at the end) once the backward is done.
//
// Every rank must make the same collectives in the same order, whatever its timing, so
// the buckets are fixed in advance: consecutive stages in the backward's order, grouped
// until a bucket holds at least kMinBucket elements, and a bucket is reduced once its last
// stage is final in every thread replica of the rank. The sums are the same rank-order
// sums per element as a reduction after the backward, so the two give the same bits.
//
// The communication thread and the thread that made the Trainer never call MPI at the same
// time (finish() waits for the thread to be idle before the Trainer's next collective), so
// MPI_THREAD_SERIALIZED is enough (Communicator::any_thread). It uses no thread pool: the
// compute threads keep theirs.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "train/data_parallel.h"
#include "train/model.h"

namespace toy::train {

class BackwardReduction {
 public:
  // `stages`: gradient_stages of the store (n_layer + 2 entries). Starts the thread.
  BackwardReduction(DataParallel& dp, const std::vector<std::vector<ElementRange>>& stages);
  ~BackwardReduction();
  BackwardReduction(const BackwardReduction&) = delete;
  BackwardReduction& operator=(const BackwardReduction&) = delete;

  // Before the backward of an optimizer step's last micro-batch, run by `replicas` models
  // that each report every stage: the ranges of `grads` are summed over the ranks (every
  // element when `full`, else this rank's shard) as their stages become final, each range
  // first passed to `prepare` on the communication thread (the replicas' sum into grads).
  void begin(float* grads, bool full, int replicas, std::function<void(int64_t, int64_t)> prepare);
  // Stage `stage` is final in one replica's gradients (from any thread).
  void stage_done(int64_t stage);
  // After the backward: every stage is final; returns once every range is summed, and
  // rethrows the communication thread's failure.
  void finish();

  // Seconds the training thread waited in finish(), and seconds the communication thread
  // spent in collectives (the part the backward hid is the difference).
  double wait_seconds() const { return wait_seconds_; }
  double busy_seconds() const { return busy_seconds_; }

  // Stages are grouped into buckets of at least this many elements (1 MB of floats): a
  // collective per tiny layer costs its latency for nothing.
  static constexpr int64_t kMinBucket = int64_t(1) << 18;

 private:
  struct Bucket {
    std::vector<ElementRange> ranges;  // sorted, adjacent ones merged
    size_t ready_at = 0;               // position of its last stage in the backward's order
  };
  void loop();
  size_t position(int64_t stage) const;  // a stage's place in the backward's order

  DataParallel& dp_;
  int64_t n_layer_;
  std::vector<Bucket> buckets_;

  std::mutex mutex_;
  std::condition_variable wake_;  // the communication thread waits on it
  std::condition_variable idle_;  // finish() waits on it
  bool stop_ = false;
  bool active_ = false;       // between begin() and the last bucket's reduction
  std::vector<int> arrived_;  // replicas done, per backward position
  int expected_ = 1;
  float* grads_ = nullptr;
  bool full_ = false;
  std::function<void(int64_t, int64_t)> prepare_;
  std::exception_ptr error_;
  double wait_seconds_ = 0.0;
  double busy_seconds_ = 0.0;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace toy::train
