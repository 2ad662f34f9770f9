// Compute: what every kernel with a hot loop runs on — the thread pool and the
// CPU backend (kernels/cpu/backend.h) chosen for this machine, passed explicitly
// together. This is also the seam where a GPU device will attach.
#pragma once

#include <cstdint>
#include <functional>

#include "core/thread_pool.h"
#include "kernels/cpu/backend.h"

namespace toy {

struct Compute {
  ThreadPool& pool;
  const cpu::Backend& cpu;

  int size() const { return pool.size(); }
  void run(const std::function<void(int, int)>& fn) const { pool.run(fn); }
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                    int64_t grain = 1) const {
    pool.parallel_for(n, fn, grain);
  }
};

}  // namespace toy
