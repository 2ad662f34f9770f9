// toy bench -m MODEL [-p 512] [-n 128] [-t N] [-r 3] [--kv-type f16] [--json]
//
// Inference speed like llama.cpp's llama-bench: ppP = one batch of P prompt tokens
// from an empty cache; tgN = N single-token decode steps from an empty cache.
// Each test runs once to warm up, then r times; the median tokens/s is reported.
// Tokens are random ids (the speed does not depend on them). Also reports the
// process's peak resident set (getrusage ru_maxrss: the mapped weights count once
// touched, plus the KV cache and scratch). --json also gives the speed per CPU
// second (tokens / (process CPU time / threads)): on a machine shared with other
// work the wall-clock speed mostly measures the other work.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "gguf/reader.h"
#include "infer/session.h"
#include "model/model.h"

namespace toy::cli {
namespace {

struct BenchOptions {
  std::string model;
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int64_t n_depth = 0;  // tokens already in the context when each test starts
  int threads = 0;
  int repetitions = 3;
  std::string kv_type = "f16";
  AttentionKernel attention = AttentionKernel::Auto;
  bool json = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// The weight type holding most bytes of the matrices, e.g. "Q4_K" (the file's
// general.file_type is not always present).
std::string dominant_type(const gguf::File& file) {
  std::map<std::string, uint64_t> bytes;
  for (const gguf::TensorInfo& t : file.tensors())
    if (t.n_dims >= 2) bytes[std::string(dtype_name(t.type))] += t.bytes;
  std::string best = "?";
  uint64_t most = 0;
  for (const auto& [name, b] : bytes)
    if (b > most) most = b, best = name;
  std::string upper = best;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return bytes.size() > 1 ? upper + " (mixed)" : upper;
}

uint64_t parameter_count(const gguf::File& file) {
  uint64_t n = 0;
  for (const gguf::TensorInfo& t : file.tensors())
    n += static_cast<uint64_t>(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
  return n;
}

std::string human_size(double bytes) {
  char text[32];
  if (bytes >= 1024.0 * 1024.0 * 1024.0) {
    std::snprintf(text, sizeof(text), "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  } else {
    std::snprintf(text, sizeof(text), "%.2f MiB", bytes / (1024.0 * 1024.0));
  }
  return text;
}

std::string human_count(uint64_t n) {
  char text[32];
  if (n >= 1000000000ull) {
    std::snprintf(text, sizeof(text), "%.2f B", static_cast<double>(n) / 1e9);
  } else {
    std::snprintf(text, sizeof(text), "%.2f M", static_cast<double>(n) / 1e6);
  }
  return text;
}

// Seconds of CPU time (user + system) the process has used so far.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Speed {
  double tps = 0.0;      // tokens per wall-clock second (median)
  double cpu_tps = 0.0;  // tokens per (CPU second / threads) (median): the speed on
                         // dedicated cores, for machines shared with other work
};

// Speed of `run()` (n_tokens each) over r timed repetitions after one warm-up.
template <typename Run>
Speed measure(int repetitions, int64_t n_tokens, int threads, Run&& run) {
  run();  // warm-up: faults the weights in, sizes scratch, trains the branch predictors
  std::vector<double> rates, cpu_rates;
  for (int r = 0; r < repetitions; ++r) {
    const double cpu0 = cpu_seconds();
    Timer timer;
    run();
    const double wall = timer.seconds(), cpu = cpu_seconds() - cpu0;
    rates.push_back(static_cast<double>(n_tokens) / wall);
    cpu_rates.push_back(static_cast<double>(n_tokens) / std::max(cpu / threads, 1e-9));
  }
  return {median(rates), median(cpu_rates)};
}

int run(const BenchOptions& o) {
  if (o.n_prompt == 0 && o.n_gen == 0) usage_error("nothing to run: both -p and -n are 0");
  const std::optional<DType> kv = dtype_from_name(o.kv_type);
  if (!kv || (*kv != DType::F32 && *kv != DType::F16 && *kv != DType::Q8_0))
    usage_error("--kv-type must be f32, f16 or q8_0, got '", o.kv_type, "'");

  const int threads = o.threads > 0 ? o.threads : default_thread_count();
  ThreadPool pool(threads);
  const Model model = Model::load(o.model);
  // Each test starts from an empty cache, so the longer one sets the context. Positions the
  // model was never trained for would measure a configuration nobody runs.
  const int64_t n_ctx = o.n_depth + std::max<int64_t>(o.n_prompt, o.n_gen) + 1;
  if (n_ctx > model.config.n_ctx_train)
    usage_error("-d ", o.n_depth, " + -p ", o.n_prompt, " / -n ", o.n_gen, " need a context of ",
                n_ctx, " positions, more than ", o.model, " was trained for (",
                model.config.n_ctx_train, "); use -d + max(-p, -n) of at most ",
                model.config.n_ctx_train - 1);
  SessionOptions session_options;
  session_options.kv_type = *kv;
  session_options.n_ctx = n_ctx;
  session_options.max_batch = std::clamp<int64_t>(o.n_prompt, 1, 512);
  session_options.mode = MatmulMode::Fast;
  session_options.attention = o.attention;
  Session session(model, pool, session_options);

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(model.config.n_vocab - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(o.n_prompt));
  for (int32_t& t : prompt) t = token(rng);
  std::vector<int32_t> generated(static_cast<size_t>(o.n_gen));
  for (int32_t& t : generated) t = token(rng);
  // -d: a context of n_depth tokens, filled once (not timed); each test starts from it.
  std::vector<int32_t> depth(static_cast<size_t>(o.n_depth));
  for (int32_t& t : depth) t = token(rng);
  if (o.n_depth > 0) session.prefill(depth);
  session.mark();  // a hybrid's recurrent state at the depth, restored by each truncate

  Speed pp, tg;
  if (o.n_prompt > 0) {
    pp = measure(o.repetitions, o.n_prompt, threads, [&] {
      session.truncate(o.n_depth);
      session.prefill(prompt);
    });
  }
  if (o.n_gen > 0) {
    tg = measure(o.repetitions, o.n_gen, threads, [&] {
      session.truncate(o.n_depth);
      for (int32_t t : generated) session.decode(t);
    });
  }

  const gguf::File& file = *model.file;
  const std::string name = std::filesystem::path(o.model).filename().string();
  const std::string type = dominant_type(file);
  const double rss = peak_rss_mb();
  if (o.json) {
    nlohmann::ordered_json j;
    j["model"] = name;
    j["type"] = type;
    j["threads"] = threads;
    j["pp"] = o.n_prompt;
    j["pp_tps"] = pp.tps;
    j["tg"] = o.n_gen;
    j["depth"] = o.n_depth;
    j["tg_tps"] = tg.tps;
    j["pp_tps_cpu"] = pp.cpu_tps;
    j["tg_tps_cpu"] = tg.cpu_tps;
    j["peak_rss_mb"] = rss;
    j["file_mb"] = static_cast<double>(file.file_size()) / (1024.0 * 1024.0);
    j["kv_type"] = o.kv_type;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("| %-24s | %10s | %8s | %-12s | %7s | %6s | %10s |\n", "model", "size", "params",
              "type", "threads", "test", "t/s");
  std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", std::string(24, '-').c_str(),
              std::string(10, '-').c_str(), std::string(8, '-').c_str(),
              std::string(12, '-').c_str(), std::string(7, '-').c_str(),
              std::string(6, '-').c_str(), std::string(10, '-').c_str());
  const std::string size = human_size(static_cast<double>(file.file_size()));
  const std::string params = human_count(parameter_count(file));
  auto row = [&](const std::string& test, double tps) {
    std::printf("| %-24s | %10s | %8s | %-12s | %7d | %6s | %10.2f |\n", name.c_str(), size.c_str(),
                params.c_str(), type.c_str(), threads, test.c_str(), tps);
  };
  const std::string at = o.n_depth > 0 ? " @ d" + std::to_string(o.n_depth) : "";
  if (o.n_prompt > 0) row("pp" + std::to_string(o.n_prompt) + at, pp.tps);
  if (o.n_gen > 0) row("tg" + std::to_string(o.n_gen) + at, tg.tps);
  std::printf("\npeak RSS %.1f MB (file %.1f MB, KV cache %s)\n", rss,
              static_cast<double>(file.file_size()) / (1024.0 * 1024.0), o.kv_type.c_str());
  return 0;
}

}  // namespace

int run_bench(int argc, char** argv) {
  CommandLine cl("bench", "Prompt-processing and generation speed (like llama-bench)");
  CLI::App& app = cl.app();
  BenchOptions o;
  app.add_option("-m,--model", o.model, "GGUF model")->required();
  app.add_option("-p,--n-prompt", o.n_prompt, "prompt tokens (0: skip)")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("-n,--n-gen", o.n_gen, "generated tokens (0: skip)")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("-d,--n-depth", o.n_depth,
                 "tokens already in the context when each test starts (llama-bench's -d)")
      ->check(at_least(0))
      ->capture_default_str();
  cl.add_threads(o.threads, "threads (default: physical cores)");
  app.add_option("-r,--repetitions", o.repetitions, "timed runs per test")
      ->check(at_least(1))
      ->capture_default_str();
  app.add_option("--kv-type", o.kv_type, "KV cache type: f32, f16, q8_0")->capture_default_str();
  app.add_flag("--json", o.json, "one JSON object instead of the table");
  cl.add_gpu_layers();
  cl.add_flash_attention(o.attention);
  if (!cl.parse(argc, argv)) return 0;
  return run(o);
}

}  // namespace toy::cli
