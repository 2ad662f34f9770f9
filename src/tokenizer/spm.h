// SentencePiece BPE (tokenizer.ggml.model = llama): split text into UTF-8
// characters, then repeatedly merge the adjacent pair whose concatenation is
// the highest-scoring vocabulary piece (leftmost on ties), through a priority
// queue over a linked list of symbols. Characters that end up in no piece are
// emitted as byte tokens <0xNN>. Same algorithm and tie-breaking as llama.cpp's
// llm_tokenizer_spm_session.
//
// Speed: when the vocabulary has no piece with "▁" after another character
// (true of SentencePiece models trained with split_by_whitespace), no merge can
// cross the start of a "▁word", so the text is encoded word by word and each
// word's result is cached. ASCII characters that occur in no multi-character
// piece (typically "\n") never merge, so words are also cut around them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/text_map.h"
#include "tokenizer/vocab.h"

namespace toy::tokenizer {

class SpmEncoder {
 public:
  // `split_words = false` always encodes whole fragments (the reference path the
  // word-by-word path is tested against).
  explicit SpmEncoder(const Vocab& vocab, bool split_words = true);

  // Encodes `text` (raw, spaces not yet replaced by "▁") and appends the ids.
  // Not thread-safe (word cache, scratch buffers).
  void encode(std::string_view text, std::vector<int32_t>& out);

 private:
  // Encodes `escaped` (spaces already "▁") without the cache.
  void encode_escaped(std::string_view escaped, std::vector<int32_t>& out);
  void encode_word_cached(std::string_view word, std::vector<int32_t>& out);

  struct Symbol {
    uint32_t offset;  // into the escaped text
    uint32_t length;  // bytes; 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct Bigram {
    float score;
    int32_t left;
    int32_t right;
    uint32_t length;  // bytes of left + right when queued (stale if it changed)
  };
  void try_add_bigram(std::string_view text, int32_t left, int32_t right);

  const Vocab& vocab_;
  bool word_split_safe_ = false;
  bool isolated_[128] = {};  // ASCII characters that occur in no multi-character piece
  int32_t byte_tokens_[256];

  TextMap<std::pair<uint32_t, uint32_t>> cache_;  // word -> (offset, count) in cache_ids_
  std::vector<int32_t> cache_ids_;
  std::vector<Symbol> symbols_;
  std::vector<Bigram> heap_;
  std::string escaped_;
};

}  // namespace toy::tokenizer
