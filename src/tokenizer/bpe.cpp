#include "tokenizer/bpe.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace toy::tokenizer {

namespace {

constexpr size_t kMaxCachedWords = 1 << 18;  // bounds the cache to tens of MB
constexpr size_t kMaxCachedWordBytes = 256;

// Heap order: lowest rank first, then leftmost (llama.cpp's llm_bigram_bpe::comparator).
struct BigramGreater {
  template <typename B>
  bool operator()(const B& a, const B& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

BpeEncoder::BpeEncoder(const Vocab& vocab) : vocab_(vocab) {
  const auto& merges = vocab.merges();
  merges_.reserve(merges.size() * 2);
  symbol_ids_.reserve(merges.size() * 2 + 256);
  symbol_text_.reserve(merges.size() * 2 + 256);
  symbol_token_.reserve(merges.size() * 2 + 256);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    if (left.empty() && right.empty()) continue;
    const int32_t l = intern(left);
    const int32_t r = intern(right);
    const int32_t result = intern(left + right);
    // The first occurrence of a pair keeps its rank (llama.cpp: bpe_ranks.emplace).
    merges_.emplace(pair_key(l, r), Merge{static_cast<int32_t>(rank), result});
  }
  const ByteUnicodeMap& bytes = ByteUnicodeMap::get();
  for (int b = 0; b < 256; ++b) {
    const std::string_view encoded = bytes.encode(static_cast<uint8_t>(b));
    auto it = symbol_ids_.find(encoded);
    byte_symbol_[b] = it == symbol_ids_.end() ? -1 : it->second;
    byte_token_[b] = vocab.find(encoded);
  }
}

int32_t BpeEncoder::intern(std::string_view text) {
  auto it = symbol_ids_.find(text);
  if (it != symbol_ids_.end()) return it->second;
  const auto id = static_cast<int32_t>(symbol_text_.size());
  symbol_ids_.emplace(std::string(text), id);
  symbol_text_.emplace_back(text);
  symbol_token_.push_back(vocab_.find(text));
  return id;
}

void BpeEncoder::encode_word(std::string_view word, std::vector<int32_t>& out) {
  if (word.size() > kMaxCachedWordBytes) {
    encode_uncached(word, out);
    return;
  }
  auto it = cache_.find(word);
  if (it != cache_.end()) {
    out.insert(out.end(), cache_ids_.begin() + it->second.first,
               cache_ids_.begin() + it->second.first + it->second.second);
    return;
  }
  const size_t first = out.size();
  encode_uncached(word, out);
  if (cache_.size() >= kMaxCachedWords) {
    cache_.clear();
    cache_ids_.clear();
  }
  const auto offset = static_cast<uint32_t>(cache_ids_.size());
  cache_ids_.insert(cache_ids_.end(), out.begin() + first, out.end());
  cache_.emplace(std::string(word),
                 std::make_pair(offset, static_cast<uint32_t>(out.size() - first)));
}

void BpeEncoder::try_add_bigram(int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const int32_t l = symbols_[left].sym;
  const int32_t r = symbols_[right].sym;
  if (l < 0 || r < 0) return;
  auto it = merges_.find(pair_key(l, r));
  if (it == merges_.end()) return;
  heap_.push_back({it->second.rank, left, right, l, r});
  std::push_heap(heap_.begin(), heap_.end(), BigramGreater{});
}

void BpeEncoder::emit_bytes_of(std::string_view encoded_text, std::vector<int32_t>& out) const {
  for (char c : encoded_text) {
    const int32_t id = vocab_.find(std::string_view(&c, 1));
    if (id >= 0) out.push_back(id);
  }
}

void BpeEncoder::encode_uncached(std::string_view word, std::vector<int32_t>& out) {
  if (vocab_.ignore_merges()) {
    // Llama 3: a word that is itself a token is taken whole.
    const ByteUnicodeMap& bytes = ByteUnicodeMap::get();
    encoded_.clear();
    for (char c : word) encoded_.append(bytes.encode(static_cast<uint8_t>(c)));
    const int32_t id = vocab_.find(encoded_);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  // One symbol per byte: each byte maps to exactly one code point.
  symbols_.clear();
  heap_.clear();
  const auto n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) {
    const auto b = static_cast<uint8_t>(word[i]);
    symbols_.push_back({byte_symbol_[b], b, i - 1, i + 1 == n ? -1 : i + 1, true});
  }
  for (int32_t i = 1; i < n; ++i) try_add_bigram(i - 1, i);

  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), BigramGreater{});
    const Bigram bigram = heap_.back();
    heap_.pop_back();
    Symbol& left = symbols_[bigram.left];
    Symbol& right = symbols_[bigram.right];
    // Stale if either side was merged away or has grown since the pair was queued.
    if (!left.alive || !right.alive || left.sym != bigram.left_sym || right.sym != bigram.right_sym)
      continue;
    left.sym = merges_.at(pair_key(bigram.left_sym, bigram.right_sym)).result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols_[right.next].prev = bigram.left;
    try_add_bigram(left.prev, bigram.left);
    try_add_bigram(bigram.left, left.next);
  }

  const ByteUnicodeMap& bytes = ByteUnicodeMap::get();
  for (int32_t i = 0; i != -1 && i < n; i = symbols_[i].next) {
    const Symbol& symbol = symbols_[i];
    if (symbol.sym >= 0) {
      const int32_t id = symbol_token_[symbol.sym];
      if (id >= 0)
        out.push_back(id);
      else
        emit_bytes_of(symbol_text_[symbol.sym], out);
    } else if (byte_token_[symbol.byte] >= 0) {
      out.push_back(byte_token_[symbol.byte]);
    } else {
      emit_bytes_of(bytes.encode(symbol.byte), out);
    }
  }
}

}  // namespace toy::tokenizer
