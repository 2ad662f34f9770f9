#include "train/vocab.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace toy::train {
namespace {

// llama.cpp's token types (llama_token_type).
constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeByte = 6;
constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 "▁"

// Length of the UTF-8 character starting at s[i], or 0 when it is not valid UTF-8.
size_t utf8_length(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return n;
}

std::string piece_of(std::string_view character) {
  return character == " " ? std::string(kSpmSpace) : std::string(character);
}

}  // namespace

TrainVocab::TrainVocab() {
  tokens_ = {"<unk>", "<s>", "</s>"};
  types_ = {kTypeUnknown, kTypeControl, kTypeControl};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    tokens_.push_back(name);
    types_.push_back(kTypeByte);
  }
}

TrainVocab TrainVocab::bytes() {
  return TrainVocab();
}

TrainVocab TrainVocab::chars(std::string_view corpus) {
  TrainVocab vocab;
  std::set<std::string> distinct;  // sorted: ids do not depend on the order of first use
  for (size_t i = 0; i < corpus.size();) {
    const size_t n = utf8_length(corpus, i);
    if (n == 0) {  // an invalid byte: byte fallback
      ++i;
      continue;
    }
    distinct.insert(std::string(corpus.substr(i, n)));
    i += n;
  }
  for (const std::string& c : distinct) {
    const std::string piece = piece_of(c);
    if (std::find(vocab.tokens_.begin(), vocab.tokens_.end(), piece) != vocab.tokens_.end())
      continue;
    vocab.char_ids_[c] = vocab.size();
    vocab.tokens_.push_back(piece);
    vocab.types_.push_back(kTypeNormal);
  }
  return vocab;
}

std::vector<int32_t> TrainVocab::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = char_ids_.empty() ? 0 : utf8_length(text, i);
    if (n > 0) {
      auto it = char_ids_.find(std::string(text.substr(i, n)));
      if (it != char_ids_.end()) {
        ids.push_back(it->second);
        i += n;
        continue;
      }
    }
    // Byte fallback for the whole character (or the one invalid byte).
    const size_t bytes = std::max<size_t>(n, 1);
    for (size_t k = 0; k < bytes; ++k)
      ids.push_back(kFirstByte + static_cast<unsigned char>(text[i + k]));
    i += bytes;
  }
  return ids;
}

void TrainVocab::write_metadata(gguf::Writer& writer) const {
  writer.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  writer.set("tokenizer.ggml.tokens", gguf::Value::strings(tokens_));
  writer.set("tokenizer.ggml.scores", gguf::Value::f32s(std::vector<float>(tokens_.size(), 0.0f)));
  writer.set("tokenizer.ggml.token_type", gguf::Value::i32s(types_));
  writer.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(kBos));
  writer.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(kEos));
  writer.set("tokenizer.ggml.unknown_token_id", gguf::Value::u32(kUnk));
  // Trained on raw text without BOS, and without SentencePiece's leading space.
  writer.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(false));
  writer.set("tokenizer.ggml.add_eos_token", gguf::Value::boolean(false));
  writer.set("tokenizer.ggml.add_space_prefix", gguf::Value::boolean(false));
}

}  // namespace toy::train
