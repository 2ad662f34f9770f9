#include "train/vocab.h"

#include <cstdio>
#include <set>

#include "gguf/reader.h"

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

}  // namespace

TrainVocab::TrainVocab() {
  add("<unk>", kTypeUnknown);
  add("<s>", kTypeControl);
  add("</s>", kTypeControl);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    add(name, kTypeByte);
  }
}

void TrainVocab::add(std::string piece, int32_t type) {
  tokens_.push_back(std::move(piece));
  types_.push_back(type);
}

TrainVocab TrainVocab::bytes() {
  TrainVocab vocab;
  vocab.add(std::string(kSpmSpace), kTypeNormal);
  return vocab;
}

TrainVocab TrainVocab::chars(std::string_view corpus) {
  TrainVocab vocab;
  std::set<std::string> pieces;  // sorted: ids do not depend on the order of first use
  for (size_t i = 0; i < corpus.size();) {
    const size_t n = utf8_length(corpus, i);
    if (n == 0) {  // an invalid byte: byte fallback
      ++i;
      continue;
    }
    const std::string_view c = corpus.substr(i, n);
    // SentencePiece looks a space up as "▁" (and a literal "▁" is then the same token).
    pieces.insert(c == " " ? std::string(kSpmSpace) : std::string(c));
    i += n;
  }
  for (const std::string& piece : pieces) vocab.add(piece, kTypeNormal);
  return vocab;
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

std::unique_ptr<tokenizer::Tokenizer> TrainVocab::tokenizer() const {
  gguf::Writer writer;
  write_metadata(writer);
  // Vocab copies what it reads, so the image need not outlive the File.
  const std::vector<uint8_t> image = writer.metadata_image("the training vocabulary");
  const auto file = gguf::File::from_memory(image.data(), image.size(), "the training vocabulary");
  return tokenizer::Tokenizer::from_gguf(*file);
}

}  // namespace toy::train
