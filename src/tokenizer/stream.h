// Streaming detokenization for generate/chat: token ids arrive one at a time
// and the text is printed as it comes, but a UTF-8 character whose bytes are
// split across tokens (byte-fallback <0xNN> tokens, byte-level BPE pieces) is
// held back until it is complete, so a terminal never sees half a character.
//
//   StreamingDetokenizer stream(tokenizer);
//   for (int32_t id : generated) std::fputs(stream.push(id).c_str(), stdout);
//   std::fputs(stream.finish().c_str(), stdout);
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace toy::tokenizer {

class StreamingDetokenizer {
 public:
  // `render_special`: write control tokens' text (e.g. "<|im_end|>"); otherwise
  // they add nothing. `strip_leading_space`: drop one leading space from the
  // first piece (an SPM text started from scratch), as detokenize() does.
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool render_special = false,
                                bool strip_leading_space = false);

  // Appends token `id`; returns the text that is now complete (maybe empty).
  std::string push(int32_t id);
  // Everything still held back (an unfinished character's bytes, as they are).
  std::string finish();
  // Bytes currently held back.
  size_t pending() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  bool render_special_;
  bool strip_leading_space_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace toy::tokenizer
