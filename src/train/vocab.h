// Vocabularies for training from scratch, as SentencePiece-style ("llama")
// GGUF vocabularies so toy and llama.cpp can both tokenize with the result:
//   ids 0..2: <unk> (type 2), <s> and </s> (type 3, control);
//   ids 3..258: the byte tokens <0x00>..<0xFF> (type 6, byte fallback);
//   then one normal token (type 1) "▁" for the space (bytes), or one per
//   distinct UTF-8 character of the corpus with ' ' spelled "▁" (chars).
//
// There is no encoder here: training text is tokenized by toy's Tokenizer
// reading this vocabulary back from its GGUF metadata (tokenizer()), the very
// tokenizer `toy tokenize` and `generate -p` build from the output model, so
// the ids seen in training are the ids seen at inference. SentencePiece spells
// a space "▁" before looking tokens up, hence the "▁" token: without it a space
// would fall back to the three bytes of "▁" (E2 96 81). Characters without a
// token fall back to byte tokens, so the byte vocabulary is byte-level.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/writer.h"
#include "tokenizer/tokenizer.h"

namespace toy::train {

class TrainVocab {
 public:
  static TrainVocab bytes();
  static TrainVocab chars(std::string_view corpus);

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  const std::string& token(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }

  static constexpr int32_t kUnk = 0, kBos = 1, kEos = 2, kFirstByte = 3;

  // tokenizer.ggml.* keys of a llama.cpp SentencePiece vocabulary.
  void write_metadata(gguf::Writer& writer) const;
  // The tokenizer of those keys, read back through the GGUF reader (in memory).
  std::unique_ptr<tokenizer::Tokenizer> tokenizer() const;

 private:
  TrainVocab();
  void add(std::string piece, int32_t type);
  std::vector<std::string> tokens_;
  std::vector<int32_t> types_;
};

}  // namespace toy::train
