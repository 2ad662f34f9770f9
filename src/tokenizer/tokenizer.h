// Text <-> token ids for a GGUF model, following llama.cpp's tokenizer:
//   1. special-token partition: the text of control/unknown tokens becomes
//      their id when parse_special is on; user-defined tokens always do;
//   2. each remaining text fragment goes through the model's tokenizer
//      (SentencePiece BPE with a "▁" space prefix, or pre-tokenizer regexes +
//      byte-level BPE);
//   3. BOS/EOS are added per the vocabulary's flags when add_special is on.
// Detokenization maps each id to its piece (bytes) and, for whole texts, undoes
// the SPM space prefix and applies the vocabulary's clean-up rules.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace toy::gguf {
class File;
}

namespace toy::tokenizer {

class SpmEncoder;
class BpeEncoder;
class PreTokenizer;

struct TokenizeOptions {
  bool add_special = false;    // add BOS/EOS as the vocabulary asks
  bool parse_special = false;  // text of control tokens becomes their ids
};

struct DetokenizeOptions {
  bool remove_special = false;  // drop a leading BOS / trailing EOS the vocabulary adds
  bool render_special = false;  // write control tokens' text (otherwise they print nothing)
  bool clean_spaces = true;     // apply the vocabulary's clean-up (if it has one)
};

class Tokenizer {
 public:
  explicit Tokenizer(Vocab vocab);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);

  const Vocab& vocab() const { return vocab_; }
  int32_t n_vocab() const { return vocab_.size(); }
  bool has_text() const { return vocab_.has_text(); }

  // Thread-safe (calls are serialized). Throws toy::Error for a vocabulary-less model.
  std::vector<int32_t> tokenize(std::string_view text, TokenizeOptions options = {}) const;

  // The bytes of one token; control and unknown tokens are empty unless `render_special`.
  // Throws toy::Error for an id outside the vocabulary.
  std::string_view piece(int32_t id, bool render_special = false) const;

  std::string detokenize(std::span<const int32_t> ids, DetokenizeOptions options = {}) const;

  bool is_eog(int32_t id) const { return vocab_.is_eog(id); }
  // Every end-of-generation id (end of text, end of turn, …).
  const std::vector<int32_t>& eog_ids() const { return vocab_.eog_ids(); }

 private:
  struct Fragment {
    int32_t token;  // -1 for raw text
    uint32_t offset;
    uint32_t length;
  };
  void partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;
  void check_id(int32_t id) const;
  void require_text(const char* what) const;

  Vocab vocab_;
  std::vector<std::string> pieces_;  // (n_vocab) the rendered text of each token
  mutable std::mutex mutex_;         // guards the encoders' caches and scratch
  std::unique_ptr<SpmEncoder> spm_;
  std::unique_ptr<BpeEncoder> bpe_;
  std::unique_ptr<PreTokenizer> pre_;
};

// llama.cpp's clean_up_tokenization_spaces: " ?" -> "?", " ' " -> "'", " 's" -> "'s", ...
void clean_up_spaces(std::string& text);

}  // namespace toy::tokenizer
