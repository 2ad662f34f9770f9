#include "infer/token_list.h"

#include <charconv>
#include <string>

#include "core/error.h"

namespace toy {

std::vector<int32_t> parse_token_list(std::string_view text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    int32_t id = 0;
    const auto result = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || result.ec != std::errc() || result.ptr != item.data() + item.size() ||
        id < 0)
      fail("token list '", text, "': entry ", ids.size() + 1, " ('", item,
           "') is not a token id (expected comma-separated non-negative integers)");
    ids.push_back(id);
    start = end + 1;
  }
  return ids;
}

}  // namespace toy
