// Vocabularies for training from scratch, as SentencePiece-style ("llama")
// GGUF vocabularies so toy and llama.cpp can both tokenize with the result:
//   ids 0..2: <unk> (type 2), <s> and </s> (type 3, control);
//   ids 3..258: the byte tokens <0x00>..<0xFF> (type 6, byte fallback);
//   then, for the chars vocabulary, one token (type 1) per distinct UTF-8
//   character of the corpus, with ' ' spelled "▁" as SentencePiece does.
// Text is encoded character by character (chars) or byte by byte (bytes);
// anything without its own token falls back to byte tokens.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/writer.h"

namespace toy::train {

class TrainVocab {
 public:
  static TrainVocab bytes();
  static TrainVocab chars(std::string_view corpus);

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  std::vector<int32_t> encode(std::string_view text) const;
  const std::string& token(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }

  static constexpr int32_t kUnk = 0, kBos = 1, kEos = 2, kFirstByte = 3;

  // tokenizer.ggml.* keys of a llama.cpp SentencePiece vocabulary.
  void write_metadata(gguf::Writer& writer) const;

 private:
  TrainVocab();
  std::vector<std::string> tokens_;
  std::vector<int32_t> types_;
  std::unordered_map<std::string, int32_t> char_ids_;  // UTF-8 character -> id (chars vocab)
};

}  // namespace toy::train
