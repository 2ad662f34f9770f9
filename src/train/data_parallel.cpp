#include "train/data_parallel.h"

#include <algorithm>

#include "core/error.h"
#include "core/timer.h"

namespace toy::train {

DataParallel::DataParallel(Communicator& comm, int64_t total, int64_t block, bool shard_optimizer)
    : comm_(comm), total_(total), sharded_(shard_optimizer && comm.size() > 1) {
  if (!sharded_) {
    shard_ = {0, total};
    return;
  }
  const int64_t N = comm.size();
  const int64_t blocks = (total + block - 1) / block;
  shard_.resize(size_t(N + 1));
  for (int64_t r = 0; r <= N; ++r) shard_[size_t(r)] = std::min(total, blocks * r / N * block);
}

int64_t DataParallel::first_row(int64_t n_seq) const {
  if (n_seq % size() != 0)
    fail("--batch ", n_seq, " is the global batch and must be a multiple of the ", size(),
         " MPI ranks (each trains batch/ranks rows of it)");
  return n_seq / size() * rank();
}

int64_t DataParallel::row_count(int64_t n_seq) const {
  first_row(n_seq);
  return n_seq / size();
}

template <typename Fn>
void DataParallel::for_each_bucket(int64_t first, int64_t last, Fn&& fn) const {
  const size_t N = size_t(comm_.size());
  std::vector<int64_t> bounds(N + 1);
  for (int64_t begin = first; begin < last; begin += kBucket) {
    const int64_t end = std::min(last, begin + kBucket);
    for (size_t r = 0; r <= N; ++r) bounds[r] = std::clamp(shard_[r], begin, end) - begin;
    fn(begin, end, bounds);
  }
}

void DataParallel::reduce_gradients(float* grads, bool full) {
  if (size() == 1) return;
  Timer timer;
  reduce_range(grads, 0, total_, full);
  comm_seconds_ += timer.seconds();
}

void DataParallel::reduce_range(float* grads, int64_t first, int64_t last, bool full) {
  if (size() == 1) return;
  if (full || !sharded_) {
    for (int64_t begin = first; begin < last; begin += kBucket)
      comm_.all_reduce_sum(grads + begin, std::min(kBucket, last - begin));
  } else {
    for_each_bucket(first, last, [&](int64_t begin, int64_t, const std::vector<int64_t>& bounds) {
      comm_.reduce_scatter_sum(grads + begin, bounds);
    });
  }
}

void DataParallel::gather_params(float* params) {
  if (!sharded_) return;
  Timer timer;
  for_each_bucket(0, total_, [&](int64_t begin, int64_t, const std::vector<int64_t>& bounds) {
    comm_.all_gather(params + begin, bounds);
  });
  comm_seconds_ += timer.seconds();
}

void DataParallel::gather_to_root(const float* shard, int64_t first, int64_t last, float* dst) {
  TOY_CHECK(sharded_ || size() == 1, "gather_to_root of an unsharded run");
  Timer timer;
  const size_t r = size_t(rank());
  for_each_bucket(first, last, [&](int64_t begin, int64_t, const std::vector<int64_t>& bounds) {
    // This rank's piece of the bucket starts at element begin + bounds[r] of its shard.
    const bool some = bounds[r + 1] > bounds[r];
    comm_.gather_to_root(some ? shard + (begin + bounds[r] - shard_begin()) : shard,
                         dst ? dst + (begin - first) : nullptr, bounds);
  });
  comm_seconds_ += timer.seconds();
}

void DataParallel::sum(double* values, int64_t n) {
  if (size() == 1) return;
  Timer timer;
  comm_.all_reduce_sum(values, n);
  comm_seconds_ += timer.seconds();
}

}  // namespace toy::train
