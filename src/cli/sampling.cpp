#include "cli/sampling.h"

#include <cmath>
#include <cstdio>
#include <random>

namespace toy::cli {

// The largest repeat window: the penalty keeps a ring of this many ids, allocated up front.
constexpr double kMaxRepeatLastN = 1 << 20;

void add_sampling_options(CLI::App& app, SamplerParams& params) {
  app.add_option("--temp", params.temperature, "temperature (0: greedy)")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--top-k", params.top_k, "top-k (0: off)")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--top-p", params.top_p, "top-p (1: off)")
      ->check(in_range(0, 1, /*lo_open=*/true))
      ->capture_default_str();
  app.add_option("--min-p", params.min_p, "min-p (0: off)")
      ->check(in_range(0, 1))
      ->capture_default_str();
  app.add_option("--repeat-penalty", params.repeat_penalty, "repeat penalty (1: off)")
      ->check(greater_than(0))
      ->capture_default_str();
  app.add_option("--repeat-last-n", params.repeat_last_n, "tokens the penalty looks back over")
      ->check(in_range(0, kMaxRepeatLastN))
      ->capture_default_str();
}

void add_ignore_eos_flag(CLI::App& app, bool& ignore_eos) {
  app.add_flag("--ignore-eos", ignore_eos,
               "never sample an end-of-generation token: go on until -n, the context or Ctrl-C");
}

CLI::Option* add_seed_option(CLI::App& app, int64_t& seed) {
  return app.add_option("--seed", seed, "random seed (-1, the default: random, and printed)")
      ->check(at_least(-1));
}

uint64_t resolve_seed(const CommandLine& cl, int64_t seed) {
  if (seed >= 0) return static_cast<uint64_t>(seed);
  const uint32_t drawn = std::random_device{}();
  std::fprintf(stderr, "toy %s: seed %u (repeat this run with --seed %u)\n", cl.command().c_str(),
               drawn, drawn);
  return drawn;
}

bool NonFiniteWatch::ok(std::span<const float> logits, int64_t position) {
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isfinite(logits[i])) continue;
    if (!failed_)
      std::fprintf(stderr,
                   "\ntoy %s: warning: the model's logits are not finite (%s for token id %zu "
                   "after %lld positions); stopping. The weights may hold NaN or infinity: "
                   "check them with toy info --check\n",
                   command_.c_str(), std::isnan(logits[i]) ? "NaN" : "infinity", i,
                   static_cast<long long>(position));
    failed_ = true;
    return false;
  }
  return true;
}

}  // namespace toy::cli
