// What the micro-benchmarks share: the thread pool and backend they run on, and their
// random inputs.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/compute.h"
#include "kernels/cpu/features.h"

namespace toy::bench {

// Threads: 2 (the machine's cores), or $TOY_BENCH_THREADS; the backend of this CPU, or
// $TOY_BACKEND (and AMX unless TOY_AMX=0).
inline const Compute& compute() {
  static ThreadPool pool(
      std::getenv("TOY_BENCH_THREADS") ? std::atoi(std::getenv("TOY_BENCH_THREADS")) : 2);
  static const Compute cx{pool, cpu::host_backend()};
  return cx;
}

// n values of N(0, 1), the same for the same seed.
inline std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = dist(rng);
  return v;
}

}  // namespace toy::bench
