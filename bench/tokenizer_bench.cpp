// Tokenization throughput on tinyshakespeare.txt (1.1 MB) with the gpt-2 and
// llama-spm fixture vocabularies, one thread. llama.cpp reference (same machine
// class, ../shared/bench/REFERENCE.md): 1.28 MB/s (gpt-2), 1.13 MB/s (llama-spm).
//
// "Cold" builds a fresh tokenizer (empty word cache) for every iteration, so it
// measures what one llama.cpp tokenize call does; "Warm" reuses the tokenizer.
//
//   build/bench/bench_tokenizer --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string fixtures_dir() {
  if (const char* env = std::getenv("TOY_FIXTURES")) return env;
  // ../shared/fixtures beside the repository (this file is <repo>/bench/...).
  return (std::filesystem::path(__FILE__).parent_path() / "../../shared/fixtures").string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const std::string& corpus() {
  static const std::string text = read_all(fixtures_dir() + "/text/tinyshakespeare.txt");
  return text;
}

toy::tokenizer::Vocab load_vocab(const std::string& name) {
  auto file = toy::gguf::File::open(fixtures_dir() + "/tokenizer/ggml-vocab-" + name + ".gguf");
  return toy::tokenizer::Vocab::from_gguf(*file);
}

void tokenize_cold(benchmark::State& state, const std::string& name) {
  const toy::tokenizer::Vocab vocab = load_vocab(name);
  const std::string& text = corpus();
  size_t n_tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto tokenizer = std::make_unique<toy::tokenizer::Tokenizer>(vocab);
    state.ResumeTiming();
    auto ids = tokenizer->tokenize(text);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
    state.PauseTiming();
    tokenizer.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["tokens/s"] = benchmark::Counter(
      static_cast<double>(n_tokens * state.iterations()), benchmark::Counter::kIsRate);
}

void tokenize_warm(benchmark::State& state, const std::string& name) {
  toy::tokenizer::Tokenizer tokenizer(load_vocab(name));
  const std::string& text = corpus();
  benchmark::DoNotOptimize(tokenizer.tokenize(text).size());
  for (auto _ : state) {
    auto ids = tokenizer.tokenize(text);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

BENCHMARK_CAPTURE(tokenize_cold, gpt2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(tokenize_cold, llama_spm, std::string("llama-spm"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(tokenize_warm, gpt2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(tokenize_warm, llama_spm, std::string("llama-spm"))
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
