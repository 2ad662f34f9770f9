// The gated delta-net op: the per-token recurrence (decode) against the chunked
// WY/UT form (prefill) over T tokens of H heads, one thread.
//   build/bench/bench_gdn --benchmark_filter=.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/cpu/features.h"
#include "kernels/gated_delta_net.h"

namespace {

struct Data {
  toy::GdnDims d;
  std::vector<float> qkv, g, beta, state, out, scratch;
};

Data make(int64_t T, int64_t dk, bool kda) {
  Data x;
  const int64_t H = 4;
  x.d = {1, T, H, H, dk, dk, 3 * H * dk, kda, 1e-6f};
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  x.qkv.resize(static_cast<size_t>(T * x.d.row_stride));
  for (float& v : x.qkv) v = normal(rng);
  x.g.resize(static_cast<size_t>(T * x.d.gate_width()));
  for (float& v : x.g) v = -unit(rng);
  x.beta.resize(static_cast<size_t>(T * H));
  for (float& v : x.beta) v = unit(rng);
  x.state.assign(static_cast<size_t>(x.d.state_floats()), 0.0f);
  x.out.resize(static_cast<size_t>(T * H * dk));
  x.scratch.resize(static_cast<size_t>(toy::gdn_scratch_floats(x.d, toy::kGdnChunk, 1)));
  return x;
}

void run(benchmark::State& state, bool chunked, bool kda) {
  Data x = make(state.range(0), state.range(1), kda);
  toy::ThreadPool pool(1);
  const toy::Compute cx{pool, toy::cpu::host_backend()};
  const int64_t qk = x.d.n_k_head * x.d.d_k;
  for (auto _ : state) {
    std::fill(x.state.begin(), x.state.end(), 0.0f);
    if (chunked) {
      toy::gdn_chunked(x.out.data(), x.state.data(), x.qkv.data(), x.qkv.data() + qk,
                       x.qkv.data() + 2 * qk, x.g.data(), x.beta.data(), x.d, toy::kGdnChunk,
                       x.scratch.data(), cx);
    } else {
      toy::gdn_recurrent(x.out.data(), x.state.data(), x.qkv.data(), x.qkv.data() + qk,
                         x.qkv.data() + 2 * qk, x.g.data(), x.beta.data(), x.d, x.scratch.data(),
                         cx);
    }
    benchmark::DoNotOptimize(x.out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));  // tokens
}

void Recurrent(benchmark::State& s) {
  run(s, false, false);
}
void Chunked(benchmark::State& s) {
  run(s, true, false);
}
void RecurrentKda(benchmark::State& s) {
  run(s, false, true);
}
void ChunkedKda(benchmark::State& s) {
  run(s, true, true);
}

// {tokens, d_k = d_v}
#define SIZES Args({64, 32})->Args({512, 64})->Args({512, 128})
BENCHMARK(Recurrent)->SIZES;
BENCHMARK(Chunked)->SIZES;
BENCHMARK(RecurrentKda)->SIZES;
BENCHMARK(ChunkedKda)->SIZES;

}  // namespace

BENCHMARK_MAIN();
