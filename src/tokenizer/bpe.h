// Byte-level BPE (tokenizer.ggml.model = gpt2): each pre-tokenized word is
// mapped byte -> printable code point (GPT-2's bytes_to_unicode), split into
// those characters, and the adjacent pair with the lowest merge rank is merged
// (leftmost on ties) until no pair has a rank. Same order as llama.cpp's
// llm_tokenizer_bpe_session.
//
// Speed: symbols are interned (every merge half and result gets an id), so a
// rank lookup is one integer-keyed probe; each word's ids are cached.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/text_map.h"
#include "tokenizer/vocab.h"

namespace toy::tokenizer {

class BpeEncoder {
 public:
  explicit BpeEncoder(const Vocab& vocab);

  // Encodes one pre-tokenized word given as raw bytes; appends the ids.
  // Not thread-safe (word cache, scratch buffers).
  void encode_word(std::string_view word, std::vector<int32_t>& out);

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // interned symbol of left + right
  };
  struct Symbol {
    int32_t sym;   // interned id, or -1 for a character that takes part in no merge
    uint8_t byte;  // the raw byte a -1 symbol stands for
    int32_t prev;
    int32_t next;
    bool alive;
  };
  struct Bigram {
    int32_t rank;
    int32_t left;
    int32_t right;
    int32_t left_sym;
    int32_t right_sym;
  };

  int32_t intern(std::string_view text);
  void try_add_bigram(int32_t left, int32_t right);
  void encode_uncached(std::string_view word, std::vector<int32_t>& out);
  // llama.cpp's fallback for a final symbol that is not a token: each byte of
  // its (byte-encoded) text that is itself a token.
  void emit_bytes_of(std::string_view encoded_text, std::vector<int32_t>& out) const;

  const Vocab& vocab_;
  TextMap<int32_t> symbol_ids_;
  std::vector<std::string> symbol_text_;        // (n_symbols) byte-encoded text
  std::vector<int32_t> symbol_token_;           // (n_symbols) token id or -1
  std::unordered_map<uint64_t, Merge> merges_;  // (left_sym << 32 | right_sym) -> merge
  int32_t byte_symbol_[256];
  int32_t byte_token_[256];

  TextMap<std::pair<uint32_t, uint32_t>> cache_;  // word -> (offset, count) in cache_ids_
  std::vector<int32_t> cache_ids_;
  std::vector<Symbol> symbols_;
  std::vector<Bigram> heap_;
  std::string encoded_;
};

}  // namespace toy::tokenizer
