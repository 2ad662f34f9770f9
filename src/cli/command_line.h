// The one argument layer of every `toy` command: parsing (CLI11), the rules for
// values, the flags several commands share (-t, -c, -ngl) and how usage errors
// are reported. A command builds a CommandLine, adds its options with the
// checks below, calls parse(); every mistake then becomes a UsageError that
// main() prints as one line, `toy CMD: error: ... (see toy CMD --help)`, and
// exit code 1 — never CLI11's own codes (104, 106, ...).
//
// Values are refused before any work starts, naming the flag and the allowed
// range: "--top-p: must be in (0, 1], got 1.5".
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "model/forward.h"

namespace toy::cli {

// A mistake on the command line (as opposed to bad input data): main() adds the help hint.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

template <typename... Args>
[[noreturn]] void usage_error(Args&&... args) {
  throw UsageError(str(std::forward<Args>(args)...));
}

// ---- Value checks (CLI11 validators). Each refuses NaN and, unless it says so, infinity.
// A real number >= min.
CLI::Validator at_least(double min);
// A real number > min.
CLI::Validator greater_than(double min);
// A real number in an interval; lo_open/hi_open make that end exclusive: (0, 1] is
// in_range(0, 1, true, false).
CLI::Validator in_range(double lo, double hi, bool lo_open = false, bool hi_open = false);
// Any finite real number.
CLI::Validator finite();

// Prints "toy CMD: note: ..." on stderr (a value was adjusted, a flag has no effect).
void note(const std::string& command, const std::string& text);

class CommandLine {
 public:
  // `command` is the subcommand's name ("generate"); help headers say "Usage: toy generate".
  CommandLine(std::string command, std::string description);

  CLI::App& app() { return app_; }
  const std::string& command() const { return command_; }

  // -t/--threads: refused <= 0; above the number of CPUs it is capped with a note (more
  // threads than CPUs only makes the spinning pool wait for the scheduler). `threads` keeps
  // its value when -t is not given.
  void add_threads(int& threads, const std::string& description = "threads");
  // -c/--ctx-size: the context length, >= 0 (0: the model's, capped). `extra_names` adds
  // aliases (",--ctx").
  CLI::Option* add_context(int64_t& n_ctx, const std::string& description,
                           const std::string& extra_names = "");
  // -ngl/--n-gpu-layers (llama.cpp's habit): accepted; there is no GPU backend, said once.
  void add_gpu_layers();
  // -fa/--flash-attn on|off|auto (llama.cpp's flag): the attention kernel
  // (model/forward.h AttentionKernel); auto picks the one measured faster per batch.
  void add_flash_attention(AttentionKernel& kernel);

  // Parses argv (argv[0] is the command name). Returns false when --help was printed (the
  // command then exits 0); throws UsageError for every mistake. Unknown options are reported
  // before missing required ones; `--` ends the options.
  bool parse(int argc, char** argv);

  // After the model is known: a context beyond what it was trained for is allowed with a
  // warning, as llama.cpp does.
  void check_context(int64_t n_ctx, int64_t n_ctx_train) const;

 private:
  void reject_unknown_options(const std::vector<std::string>& args) const;

  std::string command_;
  CLI::App app_;
  CLI::Option* threads_option_ = nullptr;
  int* threads_ = nullptr;
  CLI::Option* ctx_option_ = nullptr;
  CLI::Option* gpu_option_ = nullptr;
  CLI::Option* flash_option_ = nullptr;
  int gpu_layers_ = 0;
};

}  // namespace toy::cli
