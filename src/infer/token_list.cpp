#include "infer/token_list.h"

#include <charconv>
#include <string>

#include "core/error.h"

namespace toy {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace

std::vector<int32_t> parse_token_list(std::string_view text) {
  // Commas and whitespace both separate ids, so what `toy tokenize` prints ("9038 2501 263")
  // is accepted as it is. Two commas in a row leave an empty entry, which is refused.
  std::vector<int32_t> ids;
  size_t pos = 0;
  auto skip_spaces = [&] {
    while (pos < text.size() && is_space(text[pos])) ++pos;
  };
  skip_spaces();
  while (pos < text.size()) {
    size_t end = pos;
    while (end < text.size() && text[end] != ',' && !is_space(text[end])) ++end;
    const std::string_view item = text.substr(pos, end - pos);
    int32_t id = 0;
    const auto result = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || result.ec != std::errc() || result.ptr != item.data() + item.size() ||
        id < 0)
      fail("token list '", text, "': entry ", ids.size() + 1, " ('", item,
           "') is not a token id (expected non-negative integers separated by commas or spaces)");
    ids.push_back(id);
    pos = end;
    skip_spaces();
    if (pos < text.size() && text[pos] == ',') {
      ++pos;
      skip_spaces();
      if (pos == text.size()) break;  // one trailing comma: "1,2,"
    }
  }
  if (ids.empty())
    fail("token list '", text,
         "' has no token ids (expected non-negative integers separated by commas or spaces)");
  return ids;
}

}  // namespace toy
