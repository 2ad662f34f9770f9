#include "tokenizer/unicode.h"

#include <cstring>

namespace toy::tokenizer {

void append_utf8(std::string& out, uint32_t cpt) {
  if (cpt < 0x80) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

namespace {
inline bool is_continuation(uint8_t b) {
  return (b & 0xC0) == 0x80;
}
}  // namespace

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      if (word & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const uint8_t b0 = p[i];
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      if (i + 1 >= n || !is_continuation(p[i + 1])) return false;
      i += 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      if (i + 2 >= n || !is_continuation(p[i + 1]) || !is_continuation(p[i + 2])) return false;
      const uint32_t cpt = ((b0 & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
      if (cpt < 0x800 || (cpt >= 0xD800 && cpt <= 0xDFFF)) return false;
      i += 3;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      if (i + 3 >= n || !is_continuation(p[i + 1]) || !is_continuation(p[i + 2]) ||
          !is_continuation(p[i + 3]))
        return false;
      const uint32_t cpt = ((b0 & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) |
                           ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
      if (cpt < 0x10000 || cpt > 0x10FFFF) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

bool decode_utf8_lenient(std::string_view text, size_t& pos, uint32_t& cpt) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const uint8_t b0 = p[pos];
  if (!(b0 & 0x80)) {
    cpt = b0;
    pos += 1;
    return true;
  }
  if (!(b0 & 0x40)) {  // a continuation byte cannot start a character
    ++pos;
    return false;
  }
  if (!(b0 & 0x20)) {
    if (pos + 1 >= n || !is_continuation(p[pos + 1])) {
      ++pos;
      return false;
    }
    cpt = ((b0 & 0x1F) << 6) | (p[pos + 1] & 0x3F);
    pos += 2;
    return true;
  }
  if (!(b0 & 0x10)) {
    if (pos + 2 >= n || !is_continuation(p[pos + 1]) || !is_continuation(p[pos + 2])) {
      ++pos;
      return false;
    }
    cpt = ((b0 & 0x0F) << 12) | ((p[pos + 1] & 0x3F) << 6) | (p[pos + 2] & 0x3F);
    pos += 3;
    return true;
  }
  if (!(b0 & 0x08)) {
    if (pos + 3 >= n || !is_continuation(p[pos + 1]) || !is_continuation(p[pos + 2]) ||
        !is_continuation(p[pos + 3])) {
      ++pos;
      return false;
    }
    cpt = ((b0 & 0x07) << 18) | ((p[pos + 1] & 0x3F) << 12) | ((p[pos + 2] & 0x3F) << 6) |
          (p[pos + 3] & 0x3F);
    pos += 4;
    return true;
  }
  ++pos;
  return false;
}

void sanitize_utf8(std::string_view input, std::string& text, std::string& subject) {
  text.clear();
  subject.clear();
  text.reserve(input.size() + 8);
  subject.reserve(input.size() + 8);
  size_t pos = 0;
  while (pos < input.size()) {
    uint32_t cpt = 0xFFFD;
    if (!decode_utf8_lenient(input, pos, cpt)) cpt = 0xFFFD;
    append_utf8(text, cpt);
    // PCRE2 accepts only scalar values; the stand-ins keep the byte length and
    // are neither letters, digits, punctuation nor whitespace, like the originals.
    uint32_t stand_in = cpt;
    if (cpt >= 0xD800 && cpt <= 0xDFFF) stand_in = 0xFFFD;
    if (cpt > 0x10FFFF) stand_in = 0x10FFFF;
    append_utf8(subject, stand_in);
  }
}

size_t incomplete_utf8_tail(std::string_view text) {
  const size_t n = text.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto b = static_cast<uint8_t>(text[n - back]);
    if (is_continuation(b)) continue;
    if (b < 0xC0) return 0;  // ASCII: complete
    const size_t need = utf8_sequence_length(b);
    return back < need ? back : 0;
  }
  return 0;
}

const ByteUnicodeMap& ByteUnicodeMap::get() {
  static const ByteUnicodeMap map;
  return map;
}

ByteUnicodeMap::ByteUnicodeMap() {
  decoded_.fill(-1);
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  int next_extra = 256;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cpt = printable(b) ? static_cast<uint32_t>(b) : next_extra++;
    std::string utf8;
    append_utf8(utf8, cpt);
    encoded_len_[b] = static_cast<uint8_t>(utf8.size());
    for (size_t i = 0; i < utf8.size(); ++i) encoded_[b][i] = utf8[i];
    decoded_[cpt] = static_cast<int16_t>(b);
  }
}

}  // namespace toy::tokenizer
