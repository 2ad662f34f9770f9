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
  // Each output row of a product must get the same bits whatever other rows share the call
  // (a server's decode step, whose batch depends on the load: greedy text must not). The
  // matmul then skips kernels whose rounding differs between few rows and many (AMX tiles).
  bool batch_invariant_rows = false;

  int size() const { return pool.size(); }
  void run(const std::function<void(int, int)>& fn) const { pool.run(fn); }
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                    int64_t grain = 1) const {
    pool.parallel_for(n, fn, grain);
  }
};

}  // namespace toy
