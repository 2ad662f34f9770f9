// toy::Error and the always-on invariant check.
//
// Errors are for people: a toy::Error message names the file, key or tensor,
// what was expected and what was found. TOY_CHECK guards internal invariants
// and stays on in release builds.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace toy {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates any streamable values: str("tensor ", name, " has ", n, " dims").
template <typename... Args>
std::string str(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(str(std::forward<Args>(args)...));
}

[[noreturn]] void check_failed(const char* condition, const char* file, int line,
                               const std::string& message);

}  // namespace toy

#define TOY_CHECK(cond, ...)                                                              \
  do {                                                                                    \
    if (!(cond)) ::toy::check_failed(#cond, __FILE__, __LINE__, ::toy::str(__VA_ARGS__)); \
  } while (0)
