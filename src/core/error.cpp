#include "core/error.h"

#include <cstdio>

namespace toy {

void check_failed(const char* condition, const char* file, int line, const std::string& message) {
  // An invariant violation is a bug in toy, not in the input; still an exception so the
  // CLI can report it and exit cleanly instead of aborting.
  throw Error(str("internal error: check '", condition, "' failed at ", file, ":", line,
                  message.empty() ? "" : ": ", message));
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    } else {
      out += ch;  // UTF-8 sequences pass through unchanged
    }
  }
  return out;
}

std::string format_bytes(uint64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return str(bytes, " bytes");
  double value = static_cast<double>(bytes) / 1024.0;
  int unit = 0;
  while (value >= 1024.0 && unit < 5) value /= 1024.0, ++unit;
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f %s", value, kUnits[unit]);
  return text;
}

}  // namespace toy
