// ThreadPool: a fixed set of worker threads created once and reused for every
// parallel region (no thread creation in the decode loop). The calling thread
// takes part as thread 0. Workers spin briefly before sleeping so the many
// short regions of a decode step do not pay a futex wake-up each.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace toy {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // total threads, including the caller
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) once on every thread and waits for all.
  // The first exception thrown by any thread is rethrown here. Calls from several
  // threads (a server's scheduler beside another user of the pool) take turns; a call
  // from inside fn is not allowed.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks of at least `grain` items, one range per
  // thread, and calls fn(begin, end) for each non-empty range.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

 private:
  void worker_loop(int index);
  void execute(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex run_mutex_;  // one region at a time: task_ and pending_ describe a single call
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// Number of physical cores (hyper-threads counted once); at least 1.
int default_thread_count();

}  // namespace toy
