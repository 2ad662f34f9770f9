// The training GEMM (kernels/linear_backward.h gemm) at the SmolLM2-135M shapes of one
// micro-batch of B·T = 1024 positions, 2 threads, reported as GFLOP/s (2·M·N·K per call):
//  - Forward: Y (M, N) = X (M, K) · Wᵀ, W stored (N, K) — B read transposed.
//  - InputGrad: dX (M, K) += dY (M, N) · W — B read as stored.
//  - WeightGrad: dW (N, K) += dYᵀ · X — A read transposed.
// Args: inputs (0 F32, 1 BF16, 2 F16), then the weight's n_in, n_out.
//
//   build/bench/bench_train_gemm                       # the CPU's backend (AMX where present)
//   TOY_AMX=0 build/bench/bench_train_gemm             # the same without AMX tiles
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "bench_setup.h"
#include "core/thread_pool.h"
#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "kernels/linear_backward.h"

namespace toy {
namespace {

constexpr int64_t kRows = 1024;  // B·T positions of one micro-batch (batch 4 × 256)

using bench::compute;
using bench::gaussian;

enum class Product { Forward, InputGrad, WeightGrad };

void run(benchmark::State& state, Product product) {
  const auto inputs = static_cast<GemmInputs>(state.range(0));
  const int64_t n_in = state.range(1), n_out = state.range(2);
  const std::vector<float> x = gaussian(kRows * n_in, 1), w = gaussian(n_out * n_in, 2),
                           dy = gaussian(kRows * n_out, 3);
  std::vector<float> out(static_cast<size_t>(std::max(kRows, n_out) * std::max(n_in, n_out)));
  int64_t M = 0, N = 0, K = 0;
  for (auto _ : state) {
    switch (product) {
      case Product::Forward:  // (kRows, n_out) = x · wᵀ
        M = kRows, N = n_out, K = n_in;
        gemm(out.data(), N, {x.data(), n_in, 1}, {w.data(), 1, n_in}, M, N, K, false, compute(),
             inputs);
        break;
      case Product::InputGrad:  // (kRows, n_in) += dy · w
        M = kRows, N = n_in, K = n_out;
        gemm(out.data(), N, {dy.data(), n_out, 1}, {w.data(), n_in, 1}, M, N, K, true, compute(),
             inputs);
        break;
      case Product::WeightGrad:  // (n_out, n_in) += dyᵀ · x
        M = n_out, N = n_in, K = kRows;
        gemm(out.data(), N, {dy.data(), 1, n_out}, {x.data(), n_in, 1}, M, N, K, true, compute(),
             inputs);
        break;
    }
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(M) * double(N) * double(K),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(compute().cpu.name);
}

void Forward(benchmark::State& state) {
  run(state, Product::Forward);
}
void InputGrad(benchmark::State& state) {
  run(state, Product::InputGrad);
}
void WeightGrad(benchmark::State& state) {
  run(state, Product::WeightGrad);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int64_t inputs : {0, 1})
    for (auto [n_in, n_out] : {std::pair<int64_t, int64_t>{576, 576}, {576, 1536}, {1536, 576}})
      b->Args({inputs, n_in, n_out});
}

BENCHMARK(Forward)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(InputGrad)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(WeightGrad)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace toy

BENCHMARK_MAIN();
