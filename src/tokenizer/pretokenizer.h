// BPE pre-tokenization: splits text into words with the regular expressions of
// the model's pre-tokenizer (tokenizer.ggml.pre), compiled once with PCRE2
// (UTF + Unicode properties, JIT when available).
//
// As in llama.cpp, the expressions are applied in sequence: each one splits
// every piece left by the previous one into its matches and the text between
// them, and each piece is matched on its own (lookarounds and `$` stop at the
// piece's edges). The patterns are llama.cpp's (llama-vocab.cpp), with `\s`
// spelled out as llama.cpp's whitespace set so that PCRE2 and llama.cpp agree.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace toy::tokenizer {

struct Span {
  uint32_t offset;
  uint32_t length;
};

// The patterns for a pre-tokenizer type, in application order.
std::vector<std::string> pre_tokenizer_patterns(PreType type);

class PreTokenizer {
 public:
  explicit PreTokenizer(const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Splits `subject` (valid UTF-8) into consecutive spans covering all of it.
  // `out` is cleared first. Not thread-safe (reuses match buffers).
  void split(std::string_view subject, std::vector<Span>& out);

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> regexes_;
  std::vector<Span> scratch_;
};

}  // namespace toy::tokenizer
