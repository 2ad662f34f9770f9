// Token id lists as written on the command line: "175,132,281" or "175 132 281".
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace toy {

// Throws toy::Error naming the offending entry for anything but a non-empty
// list of integers in [0, 2^31).
std::vector<int32_t> parse_token_list(std::string_view text);

}  // namespace toy
