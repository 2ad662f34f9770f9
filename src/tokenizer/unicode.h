// UTF-8 helpers for the tokenizers: character lengths, lenient decoding that
// matches llama.cpp (invalid bytes become U+FFFD), and the GPT-2 byte <-> unicode
// mapping used by byte-level BPE vocabularies.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace toy::tokenizer {

// Bytes in the UTF-8 sequence that starts with `lead`, judged by the lead byte
// alone (a stray continuation byte counts as 1), as llama.cpp's unicode_len_utf8.
inline size_t utf8_sequence_length(uint8_t lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

// Appends the UTF-8 encoding of `cpt` (any value up to 0x1FFFFF, surrogates included).
void append_utf8(std::string& out, uint32_t cpt);

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF).
bool is_valid_utf8(std::string_view text);

// Re-encodes `text` the way llama.cpp's BPE path sees it: each decodable sequence
// (lenient: overlongs and surrogates are decoded) is re-encoded, each undecodable
// byte becomes U+FFFD. `subject` receives the same bytes except that code points
// PCRE2 rejects (surrogates, > U+10FFFF) are replaced by same-length stand-ins of
// the same regex class, so byte offsets in `subject` are offsets in `text`.
void sanitize_utf8(std::string_view input, std::string& text, std::string& subject);

// The number of bytes at the end of `text` that form an incomplete (but so far
// valid-looking) UTF-8 sequence: 0 when the text ends on a character boundary.
size_t incomplete_utf8_tail(std::string_view text);

// GPT-2's reversible byte -> printable code point mapping (bytes_to_unicode in
// openai/gpt-2 encoder.py): printable Latin-1 bytes map to themselves, the rest
// to U+0100 upwards in byte order.
class ByteUnicodeMap {
 public:
  static const ByteUnicodeMap& get();
  // The UTF-8 text of the code point that byte `b` maps to.
  std::string_view encode(uint8_t b) const { return {encoded_[b].data(), encoded_len_[b]}; }
  // The byte for code point `cpt`, or -1 when `cpt` is not in the mapping.
  int decode(uint32_t cpt) const { return cpt < 324 ? decoded_[cpt] : -1; }

 private:
  ByteUnicodeMap();
  std::array<std::array<char, 2>, 256> encoded_{};
  std::array<uint8_t, 256> encoded_len_{};
  std::array<int16_t, 324> decoded_{};
};

// Decodes one code point at `pos` with llama.cpp's lenient rules; advances `pos`.
// Returns false (and advances by one byte) for an undecodable byte.
bool decode_utf8_lenient(std::string_view text, size_t& pos, uint32_t& cpt);

}  // namespace toy::tokenizer
