#include "tokenizer/stream.h"

#include "tokenizer/unicode.h"

namespace toy::tokenizer {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool render_special,
                                           bool strip_leading_space)
    : tokenizer_(tokenizer),
      render_special_(render_special),
      strip_leading_space_(strip_leading_space && tokenizer.vocab().add_space_prefix()) {}

std::string StreamingDetokenizer::push(int32_t id) {
  std::string_view piece = tokenizer_.piece(id, render_special_);
  if (first_) {
    if (strip_leading_space_ && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    first_ = false;
  }
  pending_.append(piece);
  const size_t hold = incomplete_utf8_tail(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamingDetokenizer::finish() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace toy::tokenizer
