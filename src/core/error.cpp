#include "core/error.h"

namespace toy {

void check_failed(const char* condition, const char* file, int line, const std::string& message) {
  // An invariant violation is a bug in toy, not in the input; still an exception so the
  // CLI can report it and exit cleanly instead of aborting.
  throw Error(str("internal error: check '", condition, "' failed at ", file, ":", line,
                  message.empty() ? "" : ": ", message));
}

}  // namespace toy
