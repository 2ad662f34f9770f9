#include "cli/command_line.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

namespace toy::cli {
namespace {

// The shortest text that reads back as `v` ("0.5", "1e-08", "inf").
std::string number_text(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", v);
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof(shorter), "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return text;
}

// A validator for reals accepted by `ok`, described as `range` in messages and help.
CLI::Validator real_validator(const std::string& range, std::function<bool(double)> ok,
                              bool allow_infinity = false) {
  return CLI::Validator(
      [range, ok = std::move(ok), allow_infinity](std::string& text) -> std::string {
        const char* begin = text.c_str();
        char* end = nullptr;
        const double v = std::strtod(begin, &end);
        if (text.empty() || end != begin + text.size())
          return str("expected a number in ", range, ", got '", text, "'");
        if (std::isnan(v) || (std::isinf(v) && !allow_infinity) || !ok(v))
          return str("must be in ", range, ", got ", text);
        return "";
      },
      range);
}

int cpu_count() {
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(std::min<long>(n, 1 << 16)) : 1;
}

}  // namespace

CLI::Validator at_least(double min) {
  return real_validator(str("[", number_text(min), ", inf)"), [min](double v) { return v >= min; });
}

CLI::Validator greater_than(double min) {
  return real_validator(str("(", number_text(min), ", inf)"), [min](double v) { return v > min; });
}

CLI::Validator in_range(double lo, double hi, bool lo_open, bool hi_open) {
  const std::string range =
      str(lo_open ? "(" : "[", number_text(lo), ", ", number_text(hi), hi_open ? ")" : "]");
  return real_validator(range, [=](double v) {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  });
}

CLI::Validator finite() {
  return real_validator("(-inf, inf)", [](double) { return true; });
}

void note(const std::string& command, const std::string& text) {
  std::fprintf(stderr, "toy %s: note: %s\n", command.c_str(), text.c_str());
}

CommandLine::CommandLine(std::string command, std::string description)
    : command_(std::move(command)), app_(std::move(description), "toy " + command_) {
  // Help on stdout, errors through UsageError; CLI11 never prints or exits by itself.
  app_.set_help_flag("-h,--help", "print this help and exit");
}

void CommandLine::add_threads(int& threads, const std::string& description) {
  threads_ = &threads;
  threads_option_ =
      app_.add_option("-t,--threads", threads, description)->check(at_least(1))->type_name("N");
  if (threads > 0) threads_option_->capture_default_str();
}

CLI::Option* CommandLine::add_context(int64_t& n_ctx, const std::string& description,
                                      const std::string& extra_names) {
  ctx_option_ = app_.add_option("-c,--ctx-size" + extra_names, n_ctx, description)
                    ->check(at_least(0))
                    ->type_name("N");
  return ctx_option_;
}

void CommandLine::add_gpu_layers() {
  gpu_option_ = app_.add_option("--n-gpu-layers,--gpu-layers", gpu_layers_,
                                "accepted for llama.cpp compatibility (also -ngl N); toy has no "
                                "GPU backend and runs every layer on the CPU")
                    ->type_name("N");
}

void CommandLine::add_flash_attention(AttentionKernel& kernel) {
  flash_option_ =
      app_.add_option_function<std::string>(
              "--flash-attn",
              [&kernel](const std::string& value) {
                kernel = value == "on"    ? AttentionKernel::Flash
                         : value == "off" ? AttentionKernel::Plain
                                          : AttentionKernel::Auto;
              },
              "attention kernel (also -fa): on = tiled with online softmax, off = one query at "
              "a time, auto = the faster, the tiled one")
          ->check(CLI::IsMember({"on", "off", "auto"}))
          ->type_name("on|off|auto")
          ->default_str("auto");
}

void CommandLine::reject_unknown_options(const std::vector<std::string>& args) const {
  bool value_next = false;  // the previous option takes this argument as its value
  for (const std::string& arg : args) {
    if (value_next) {
      value_next = false;
      continue;
    }
    if (arg == "--") return;  // the rest are positional arguments
    if (arg.size() < 2 || arg[0] != '-') continue;
    const bool is_long = arg[1] == '-';
    // "-1", "-.5": a negative number given as a positional argument.
    if (!is_long && (std::isdigit(static_cast<unsigned char>(arg[1])) || arg[1] == '.')) continue;
    const size_t equals = arg.find('=');
    const std::string name = is_long ? arg.substr(0, equals) : arg.substr(0, 2);
    const CLI::Option* option = app_.get_option_no_throw(name);
    if (!option) usage_error("unknown option '", name, "'");
    const bool attached = is_long ? equals != std::string::npos : arg.size() > 2;
    if (!attached && option->get_items_expected_min() > 0) value_next = true;
  }
}

bool CommandLine::parse(int argc, char** argv) {
  std::vector<std::string> args;
  bool options_ended = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") options_ended = true;
    // llama.cpp spells the GPU-layer flag -ngl; CLI11 would read it as -n with value "gl".
    if (!options_ended && gpu_option_ && (arg == "-ngl" || arg.starts_with("-ngl=")))
      arg = "--n-gpu-layers" + arg.substr(4);
    // -fa likewise would be read as -f with value "a".
    if (!options_ended && flash_option_ && (arg == "-fa" || arg.starts_with("-fa=")))
      arg = "--flash-attn" + arg.substr(3);
    args.push_back(std::move(arg));
  }
  reject_unknown_options(args);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last-first
  try {
    app_.parse(args);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app_.help().c_str(), stdout);
    return false;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app_.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return false;
  } catch (const CLI::ParseError& e) {
    usage_error(e.what());
  }
  if (threads_option_ && threads_option_->count() > 0) {
    const int max_threads = cpu_count();
    if (*threads_ > max_threads) {
      note(command_, str("-t ", *threads_, " is more than the ", max_threads,
                         " CPUs of this machine; using ", max_threads));
      *threads_ = max_threads;
    }
  }
  if (gpu_option_ && gpu_option_->count() > 0)
    note(command_,
         str("-ngl ", gpu_layers_, ": toy has no GPU backend; every layer runs on the CPU"));
  return true;
}

void CommandLine::check_context(int64_t n_ctx, int64_t n_ctx_train) const {
  if (n_ctx > n_ctx_train && n_ctx_train > 0)
    std::fprintf(stderr,
                 "toy %s: warning: -c %lld is larger than the model's training context (%lld); "
                 "output beyond %lld tokens may degrade\n",
                 command_.c_str(), static_cast<long long>(n_ctx),
                 static_cast<long long>(n_ctx_train), static_cast<long long>(n_ctx_train));
}

}  // namespace toy::cli
