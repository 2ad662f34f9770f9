// Hash maps keyed by text that can be probed with a std::string_view (no
// temporary std::string per lookup): token text -> id, word -> cached ids.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

namespace toy::tokenizer {

// A fast non-cryptographic hash over 8-byte chunks (multiply-xorshift mixing).
inline uint64_t hash_text(std::string_view text) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = text.size() * kMul;
  const char* p = text.data();
  size_t n = text.size();
  while (n >= 8) {
    uint64_t chunk;
    std::memcpy(&chunk, p, 8);
    h = (h ^ chunk) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t chunk = 0;
    std::memcpy(&chunk, p, n);
    h = (h ^ chunk) * kMul;
    h ^= h >> 29;
  }
  return h ^ (h >> 32);
}

struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return hash_text(text); }
};

struct TextEqual {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

template <typename Value>
using TextMap = std::unordered_map<std::string, Value, TextHash, TextEqual>;

}  // namespace toy::tokenizer
