// Weight matmul throughput per weight type, 2 threads:
//  - Prefill: T = 512 activation rows through the SmolLM2-135M layer shapes,
//    reported as GFLOP/s (2 * T * n_in * n_out per call).
//  - Decode: T = 1 through a stack of weights larger than the last-level cache (so
//    they stream from DRAM, as in a real decode step), reported as GB/s of weight
//    bytes read.
//  - DecodeRows: the same with T = 2 and 4 rows (a server decoding a few sequences
//    together: the block products of the stored weights, kStreamingT rows at most).
//
//   build-perf/bench/bench_matmul --benchmark_filter=Prefill
//   build-perf/bench/bench_matmul --benchmark_filter=Decode
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "bench_setup.h"
#include "core/thread_pool.h"
#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "kernels/matmul.h"
#include "quant/quant.h"

namespace toy {
namespace {

using bench::compute;
using bench::gaussian;

// `copies` identical weights of n_out rows × n_in in `type`, back to back.
std::vector<uint8_t> make_weights(DType type, int64_t n_in, int64_t n_out, int copies) {
  const std::vector<float> values = gaussian(n_in * n_out, 42);
  const int64_t row = row_bytes(type, n_in), one = row * n_out;
  std::vector<uint8_t> bytes(static_cast<size_t>(one * copies));
  for (int64_t o = 0; o < n_out; ++o)
    quant::quantize_row(type, values.data() + o * n_in, bytes.data() + o * row, n_in);
  for (int c = 1; c < copies; ++c) std::memcpy(bytes.data() + c * one, bytes.data(), one);
  return bytes;
}

DType type_arg(int64_t i) {
  return static_cast<DType>(static_cast<uint32_t>(i));
}

void Prefill(benchmark::State& state) {
  const DType type = type_arg(state.range(0));
  const int64_t n_in = state.range(1), n_out = state.range(2), T = 512;
  const MatmulMode mode = state.range(3) ? MatmulMode::Exact : MatmulMode::Fast;
  std::vector<uint8_t> bytes = make_weights(type, n_in, n_out, 1);
  const Tensor w = Tensor::view(type, bytes.data(), {n_in, n_out});
  const std::vector<float> x = gaussian(T * n_in, 7);
  std::vector<float> y(static_cast<size_t>(T * n_out));
  for (auto _ : state) {
    matmul(y.data(), x.data(), w, T, compute(), mode);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(std::string(dtype_name(type)) + (state.range(3) ? " exact" : " fast"));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * T * n_in * n_out * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// T activation rows through weights streamed from DRAM (see the header).
void decode_rows(benchmark::State& state, int64_t T) {
  const DType type = type_arg(state.range(0));
  const int64_t n_in = state.range(1), n_out = state.range(2);
  const int64_t one = row_bytes(type, n_in) * n_out;
  const int copies = static_cast<int>(std::max<int64_t>(1, (256ll << 20) / one));  // 256 MiB
  std::vector<uint8_t> bytes = make_weights(type, n_in, n_out, copies);
  const std::vector<float> x = gaussian(T * n_in, 7);
  std::vector<float> y(static_cast<size_t>(T * n_out));
  int c = 0;
  for (auto _ : state) {
    const Tensor w = Tensor::view(type, bytes.data() + c * one, {n_in, n_out});
    matmul(y.data(), x.data(), w, T, compute(), MatmulMode::Fast);
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
  state.SetLabel(std::string(dtype_name(type)));
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(one) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

void Decode(benchmark::State& state) {
  decode_rows(state, 1);
}

void DecodeRows(benchmark::State& state) {
  decode_rows(state, state.range(3));
}

const DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                        DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                        DType::Q4_K, DType::Q5_K, DType::Q6_K};

void prefill_args(benchmark::internal::Benchmark* b) {
  for (DType t : kTypes) {
    const int64_t id = static_cast<int64_t>(t);
    // K-quants need n_in % 256 == 0: llama.cpp stores the 576-wide tensors of this
    // model in a fallback type (Q4_K -> Q5_0, Q6_K -> Q8_0), so only ffn_down is K.
    if (dtype_info(t).block_size != 256) {
      b->Args({id, 576, 1536, 0});  // ffn_gate / ffn_up
      b->Args({id, 576, 576, 0});   // attn_q / attn_output
    }
    b->Args({id, 1536, 576, 0});  // ffn_down
  }
  for (DType t : {DType::F16, DType::Q8_0, DType::Q4_K, DType::Q6_K})
    b->Args({static_cast<int64_t>(t), 1536, 576, 1});  // exact mode
}

void decode_args(benchmark::internal::Benchmark* b) {
  for (DType t : kTypes) {
    if (dtype_info(t).block_size != 256) b->Args({static_cast<int64_t>(t), 576, 1536});
    b->Args({static_cast<int64_t>(t), 1536, 576});
  }
}

void decode_rows_args(benchmark::internal::Benchmark* b) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q5_0})
    for (int64_t T : {2, 4}) b->Args({static_cast<int64_t>(t), 576, 1536, T});
}

BENCHMARK(Prefill)->Apply(prefill_args)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Decode)->Apply(decode_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(DecodeRows)->Apply(decode_rows_args)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace toy

BENCHMARK_MAIN();
