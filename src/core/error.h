// toy::Error and the always-on invariant check.
//
// Errors are for people: a toy::Error message names the file, key or tensor,
// what was expected and what was found. TOY_CHECK guards internal invariants
// and stays on in release builds.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace toy {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message), message_(message) {}
  // The whole message: what() is a C string and would end at an embedded NUL byte (a value
  // read from a file can hold one); print it with printable().
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

// `text` with control bytes (NUL, escape sequences, newlines, DEL) written as \xNN, \n, \t,
// \r so an error message shows what a file really holds and stays one line.
std::string printable(std::string_view text);

// "512 bytes", "3.00 KiB", "1.50 GiB": sizes in allocation-failure messages.
std::string format_bytes(uint64_t bytes);

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
