// Data parallelism across processes (mpirun -np N): what the Trainer does with a
// Communicator (train/communicator.h) around its step. Every rank draws the same
// global batch of B rows and trains rows [B·r/N, B·(r+1)/N) of it (B % N == 0), so
// the batches, and a checkpoint's sampler state, do not depend on N. The gradients are
// summed over the ranks in buckets, in rank order (DDP's and llm.c's all-reduce): layer
// by layer while the backward runs (train/backward_reduction.h), or after it. With
// shard_optimizer (ZeRO-1, Rajbhandari et al. 2020, stage 1) each rank only receives the
// sum of its own shard (reduce-scatter), holds and updates the AdamW moments of that
// shard alone, and the updated shards are all-gathered. Shards are whole optimizer
// blocks, so the global gradient norm is summed in the same block order as one process,
// and both modes give the same bits.
//
// With one rank every call is a no-op.
#pragma once

#include <cstdint>
#include <vector>

#include "train/communicator.h"

namespace toy::train {

class DataParallel {
 public:
  // `total` elements of parameters, laid out in optimizer blocks of `block` elements.
  DataParallel(Communicator& comm, int64_t total, int64_t block, bool shard_optimizer);

  int rank() const { return comm_.rank(); }
  int size() const { return comm_.size(); }
  bool sharded() const { return sharded_; }

  // This rank's rows [first, first + count) of a global batch of n_seq rows; toy::Error when
  // n_seq is not a multiple of the number of ranks.
  int64_t first_row(int64_t n_seq) const;
  int64_t row_count(int64_t n_seq) const;

  // The elements this rank's AdamW updates: [shard_begin, shard_end) when sharded, the
  // whole store otherwise (every rank applies the same update to the same sum).
  int64_t shard_begin() const { return shard_[size_t(shard_owner())]; }
  int64_t shard_end() const { return shard_[size_t(shard_owner()) + 1]; }

  // Sums the ranks' gradients: every element on every rank when `full` (or not sharded),
  // else only this rank's shard.
  void reduce_gradients(float* grads, bool full);
  // The same over elements [begin, end) only, untimed: what the communication thread of
  // train/backward_reduction.h calls, range by range. Every element is summed in rank order
  // whatever the ranges, so any split gives the bits of reduce_gradients.
  void reduce_range(float* grads, int64_t begin, int64_t end, bool full);
  // After a sharded update: every rank's shard of `params` to every rank (no-op unsharded).
  void gather_params(float* params);
  // Elements [begin, end) of a sharded array (sharded runs only), into `dst` (end − begin
  // elements) on rank 0: every rank passes its shard (`shard` holds elements
  // [shard_begin(), shard_end())); `dst` is unused elsewhere (null). A collective: every
  // rank calls it with the same range.
  void gather_to_root(const float* shard, int64_t begin, int64_t end, float* dst);
  // Rank-order sum of n doubles (loss sums, counts, norm partials) on every rank.
  void sum(double* values, int64_t n);

  // Seconds the calling thread spent in collectives so far (not reduce_range's).
  double comm_seconds() const { return comm_seconds_; }

 private:
  int shard_owner() const { return sharded_ ? comm_.rank() : 0; }
  // Calls fn(offset, bounds) per bucket of [begin, end) with the shard bounds clipped to it.
  template <typename Fn>
  void for_each_bucket(int64_t begin, int64_t end, Fn&& fn) const;

  // Elements per collective: large enough to amortize latency, small enough that the
  // reduce-scatter's receive buffer stays small next to the model (16 MB of floats).
  static constexpr int64_t kBucket = int64_t(1) << 22;

  Communicator& comm_;
  int64_t total_;
  bool sharded_;
  std::vector<int64_t> shard_;  // (size+1) shard bounds (whole blocks), or {0, total}
  double comm_seconds_ = 0.0;
};

}  // namespace toy::train
