// Throughput of the scalar reference rows: dequantize_row and quantize_row for the
// main weight types (and Q8_K, the activation format). One 4096-element row per
// iteration, like one row of a 4096-wide weight matrix.
//
//   build/bench/bench_quant --benchmark_min_time=0.2s
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/dtype.h"
#include "quant/quant.h"

namespace {

using toy::DType;

constexpr int64_t kRow = 4096;

const DType kTypes[] = {DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K,
                        DType::Q5_K, DType::Q6_K, DType::Q8_K, DType::Q2_K, DType::Q3_K};

std::vector<float> gaussian_row() {
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> x(kRow);
  for (float& v : x) v = dist(rng);
  return x;
}

void BM_Dequantize(benchmark::State& state, DType type) {
  const auto x = gaussian_row();
  std::vector<uint8_t> q(static_cast<size_t>(toy::row_bytes(type, kRow)));
  toy::quant::quantize_row(type, x.data(), q.data(), kRow);
  std::vector<float> y(kRow);
  for (auto _ : state) {
    toy::quant::dequantize_row(type, q.data(), y.data(), kRow);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kRow);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(q.size()));
}

void BM_Quantize(benchmark::State& state, DType type) {
  const auto x = gaussian_row();
  std::vector<uint8_t> q(static_cast<size_t>(toy::row_bytes(type, kRow)));
  for (auto _ : state) {
    toy::quant::quantize_row(type, x.data(), q.data(), kRow);
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kRow);
  state.SetBytesProcessed(state.iterations() * kRow * static_cast<int64_t>(sizeof(float)));
}

// Registered by name ("BM_Dequantize/q4_k") so runs can be filtered per type.
const bool kRegistered = [] {
  for (DType type : kTypes) {
    const std::string name(toy::dtype_name(type));
    benchmark::RegisterBenchmark(("BM_Dequantize/" + name).c_str(), BM_Dequantize, type);
    benchmark::RegisterBenchmark(("BM_Quantize/" + name).c_str(), BM_Quantize, type);
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
