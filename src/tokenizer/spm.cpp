#include "tokenizer/spm.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace toy::tokenizer {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁"
constexpr size_t kMaxCachedWords = 1 << 18;                // bounds the cache to tens of MB
constexpr size_t kMaxCachedWordBytes = 256;

// Heap order: highest score first, then leftmost (llama.cpp's llm_bigram_spm::comparator).
struct BigramLess {
  template <typename B>
  bool operator()(const B& a, const B& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

SpmEncoder::SpmEncoder(const Vocab& vocab, bool split_words) : vocab_(vocab) {
  for (int b = 0; b < 256; ++b) byte_tokens_[b] = vocab.byte_token(static_cast<uint8_t>(b));
  // Safe to encode word by word when no piece has "▁" right after another character.
  word_split_safe_ = split_words;
  for (int32_t id = 0; id < vocab.size() && word_split_safe_; ++id) {
    const std::string& text = vocab.token(id).text;
    for (size_t pos = text.find(kSpaceMarker, 1); pos != std::string::npos;
         pos = text.find(kSpaceMarker, pos + 1)) {
      if (pos < kSpaceMarker.size() || text.compare(pos - 3, 3, kSpaceMarker) != 0) {
        word_split_safe_ = false;
        break;
      }
    }
  }
  for (int c = 1; c < 128; ++c) isolated_[c] = c != ' ';
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const std::string& text = vocab.token(id).text;
    if (text.size() < 2) continue;
    for (char c : text)
      if (static_cast<unsigned char>(c) < 128) isolated_[static_cast<unsigned char>(c)] = false;
  }
}

void SpmEncoder::encode(std::string_view text, std::vector<int32_t>& out) {
  // A stray UTF-8 lead byte before a space would swallow part of its "▁", so
  // invalid text is encoded in one piece, exactly as llama.cpp does.
  if (!word_split_safe_ || !is_valid_utf8(text)) {
    escaped_.clear();
    for (char c : text) {
      if (c == ' ')
        escaped_.append(kSpaceMarker);
      else
        escaped_.push_back(c);
    }
    encode_escaped(escaped_, out);
    return;
  }
  // Words start at every space that follows a non-space, and around every
  // isolated character.
  size_t begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool word_start = c == ' ' && i > 0 && text[i - 1] != ' ';
    if (word_start || (c < 128 && isolated_[c])) {
      if (i > begin) encode_word_cached(text.substr(begin, i - begin), out);
      begin = i;
      if (c != ' ') {
        encode_word_cached(text.substr(i, 1), out);
        begin = i + 1;
      }
    }
  }
  if (begin < text.size()) encode_word_cached(text.substr(begin), out);
}

void SpmEncoder::encode_word_cached(std::string_view word, std::vector<int32_t>& out) {
  if (word.size() <= kMaxCachedWordBytes) {
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), cache_ids_.begin() + it->second.first,
                 cache_ids_.begin() + it->second.first + it->second.second);
      return;
    }
  }
  std::string escaped;
  escaped.reserve(word.size() + 8);
  for (char c : word) {
    if (c == ' ')
      escaped.append(kSpaceMarker);
    else
      escaped.push_back(c);
  }
  const size_t first = out.size();
  encode_escaped(escaped, out);
  if (word.size() > kMaxCachedWordBytes) return;
  if (cache_.size() >= kMaxCachedWords) {
    cache_.clear();
    cache_ids_.clear();
  }
  const auto offset = static_cast<uint32_t>(cache_ids_.size());
  cache_ids_.insert(cache_ids_.end(), out.begin() + first, out.end());
  cache_.emplace(std::string(word),
                 std::make_pair(offset, static_cast<uint32_t>(out.size() - first)));
}

void SpmEncoder::try_add_bigram(std::string_view text, int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const Symbol& l = symbols_[left];
  const Symbol& r = symbols_[right];
  const int32_t id = vocab_.find(text.substr(l.offset, l.length + r.length));
  if (id < 0) return;
  heap_.push_back({vocab_.token(id).score, left, right, l.length + r.length});
  std::push_heap(heap_.begin(), heap_.end(), BigramLess{});
}

void SpmEncoder::encode_escaped(std::string_view text, std::vector<int32_t>& out) {
  TOY_CHECK(text.size() < (size_t{1} << 31), "text too long for the SPM tokenizer");
  symbols_.clear();
  heap_.clear();
  for (size_t offset = 0; offset < text.size();) {
    const size_t length =
        std::min(utf8_sequence_length(static_cast<uint8_t>(text[offset])), text.size() - offset);
    const auto index = static_cast<int32_t>(symbols_.size());
    symbols_.push_back({static_cast<uint32_t>(offset), static_cast<uint32_t>(length), index - 1,
                        offset + length == text.size() ? -1 : index + 1});
    offset += length;
  }
  for (int32_t i = 1; i < static_cast<int32_t>(symbols_.size()); ++i)
    try_add_bigram(text, i - 1, i);

  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), BigramLess{});
    const Bigram bigram = heap_.back();
    heap_.pop_back();
    Symbol& left = symbols_[bigram.left];
    Symbol& right = symbols_[bigram.right];
    // Skip pairs made stale by an earlier merge.
    if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length)
      continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols_[right.next].prev = bigram.left;
    try_add_bigram(text, left.prev, bigram.left);
    try_add_bigram(text, bigram.left, left.next);
  }

  if (symbols_.empty()) return;
  for (int32_t i = 0; i != -1; i = symbols_[i].next) {
    const Symbol& symbol = symbols_[i];
    const std::string_view piece = text.substr(symbol.offset, symbol.length);
    const int32_t id = vocab_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    // Every merged symbol is a piece, so this is a single character outside the
    // vocabulary: emit its bytes.
    for (char c : piece) {
      const int32_t byte_id = byte_tokens_[static_cast<uint8_t>(c)];
      if (byte_id >= 0) {
        out.push_back(byte_id);
      } else if (vocab_.unk() >= 0) {
        out.push_back(vocab_.unk());
      } else {
        fail(vocab_.source(), ": the vocabulary has no byte token <0x",
             "0123456789ABCDEF"[static_cast<uint8_t>(c) >> 4],
             "0123456789ABCDEF"[static_cast<uint8_t>(c) & 15], "> and no unknown token");
      }
    }
  }
}

}  // namespace toy::tokenizer
