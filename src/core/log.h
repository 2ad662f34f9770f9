// Logging to stderr. Standard output is reserved for a command's results.
#pragma once

#include <cstdio>
#include <string>

#include "core/error.h"

namespace toy {

enum class LogLevel { Quiet = 0, Info = 1, Debug = 2 };

LogLevel log_level();
void set_log_level(LogLevel level);

template <typename... Args>
void log_info(Args&&... args) {
  if (log_level() >= LogLevel::Info)
    std::fprintf(stderr, "%s\n", str(std::forward<Args>(args)...).c_str());
}

template <typename... Args>
void log_debug(Args&&... args) {
  if (log_level() >= LogLevel::Debug)
    std::fprintf(stderr, "%s\n", str(std::forward<Args>(args)...).c_str());
}

}  // namespace toy
