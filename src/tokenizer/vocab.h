// The vocabulary of a GGUF model, read from its `tokenizer.*` metadata: token
// texts, scores and attributes, BPE merges, special token ids and the flags
// that steer tokenization (add BOS/EOS, space prefix, pre-tokenizer type).
//
// Follows llama.cpp's llama_vocab::load so the same file tokenizes the same way
// (including its fix-ups: control-looking tokens marked CONTROL, phi-3 RSTRIP).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/text_map.h"

namespace toy::gguf {
class File;
}

namespace toy::tokenizer {

enum class VocabType {
  None,  // no vocabulary: the model is driven with token ids only
  Spm,   // tokenizer.ggml.model = llama: SentencePiece BPE by piece score, byte fallback
  Bpe,   // tokenizer.ggml.model = gpt2: byte-level BPE by merge rank
};

// The regular-expression family of a BPE pre-tokenizer (tokenizer.ggml.pre).
enum class PreType {
  Default,
  Llama3,
  DeepseekLlm,
  DeepseekCoder,
  Falcon,
  Starcoder,  // also refact, command-r, smollm, codeshell, exaone, minerva
  Gpt2,       // also mpt, olmo, jais, phi-2
  Qwen2,      // also stablelm2
  Poro,       // also bloom, gpt3-finnish
  Viking,
  Chameleon,
};

// Token attributes, as llama.cpp's llama_token_attr bit flags.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrNormalized = 1u << 6,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
  kAttrSingleWord = 1u << 9,
};

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
};

class Vocab {
 public:
  // Reads the vocabulary of `file`. Throws toy::Error naming the file and key.
  static Vocab from_gguf(const gguf::File& file);

  VocabType type() const { return type_; }
  const std::string& model_name() const { return model_name_; }  // tokenizer.ggml.model
  const std::string& pre_name() const { return pre_name_; }      // tokenizer.ggml.pre
  PreType pre_type() const { return pre_type_; }
  const std::string& source() const { return source_; }  // the file, for messages

  int32_t size() const { return n_vocab_; }
  bool has_text() const { return type_ != VocabType::None; }
  const TokenData& token(int32_t id) const { return tokens_[id]; }
  // The id whose text is exactly `text`, or -1.
  int32_t find(std::string_view text) const {
    auto it = text_to_id_.find(text);
    return it == text_to_id_.end() ? -1 : it->second;
  }
  // The id of the SPM byte token "<0xXX>" (or the one-byte text) for byte `b`, or -1.
  int32_t byte_token(uint8_t b) const;

  // BPE merges in rank order (rank = index): the two halves of "left right".
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }

  // Special token ids (-1 when absent).
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }
  int32_t unk() const { return unk_; }
  int32_t pad() const { return pad_; }
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_; }
  // Control, user-defined and unknown tokens, longest text first: the tokens
  // whose text the partitioner looks for in the input.
  const std::vector<int32_t>& special_tokens() const { return special_by_length_; }

  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool clean_spaces() const { return clean_spaces_; }
  bool ignore_merges() const { return ignore_merges_; }

  const std::string& chat_template() const { return chat_template_; }

 private:
  void read_tokens(const gguf::File& file);
  void read_merges(const gguf::File& file);
  void choose_pre_type();
  void read_special_ids(const gguf::File& file);
  void mark_control_looking_tokens();
  void apply_model_specific_attrs(const gguf::File& file);

  std::string source_;
  VocabType type_ = VocabType::None;
  std::string model_name_;
  std::string pre_name_;
  PreType pre_type_ = PreType::Default;
  int32_t n_vocab_ = 0;
  std::vector<TokenData> tokens_;  // (n_vocab) empty for VocabType::None
  TextMap<int32_t> text_to_id_;
  std::vector<std::pair<std::string, std::string>> merges_;
  std::vector<int32_t> special_by_length_;
  std::vector<int32_t> eog_;

  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1, sep_ = -1, pad_ = -1, mask_ = -1;
  int32_t fim_pre_ = -1, fim_suf_ = -1, fim_mid_ = -1, fim_pad_ = -1, fim_rep_ = -1, fim_sep_ = -1;

  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
  bool clean_spaces_ = false;
  bool ignore_merges_ = false;
  std::string chat_template_;
};

}  // namespace toy::tokenizer
