// The sampling flags generate and chat share (one place for their names,
// defaults and allowed ranges), the seed rule, and the guard against a model
// whose logits are not finite.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "cli/command_line.h"
#include "infer/sampler.h"

namespace toy::cli {

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, each refused outside
// its range before the model is loaded.
void add_sampling_options(CLI::App& app, SamplerParams& params);

// --ignore-eos (llama.cpp's flag): the end-of-generation tokens are never sampled, so the
// output goes on until -n, the end of the context or Ctrl-C.
void add_ignore_eos_flag(CLI::App& app, bool& ignore_eos);

// --seed -1 (the default) draws a random seed and prints it on stderr, so a run can be
// repeated; any other value is used as given.
CLI::Option* add_seed_option(CLI::App& app, int64_t& seed);
uint64_t resolve_seed(const CommandLine& cl, int64_t seed);

// Watches the logits of each step: the first time one is NaN or infinite it prints one
// warning naming the position and the token id and reports failure; sampling such logits
// would emit the same token forever.
class NonFiniteWatch {
 public:
  explicit NonFiniteWatch(std::string command) : command_(std::move(command)) {}
  // False (after the warning) when `logits` holds a non-finite value.
  bool ok(std::span<const float> logits, int64_t position);
  bool failed() const { return failed_; }

 private:
  std::string command_;
  bool failed_ = false;
};

}  // namespace toy::cli
