// StopText: the generated text as a client may see it, given stop sequences.
// Text is released as it is generated except for a tail that could still grow
// into a stop sequence (held back until it cannot); when a stop sequence
// appears, the text ends just before it (OpenAI: the stop sequence is not
// returned). A cut never splits a UTF-8 character: a held-back tail starts
// where a stop sequence's first byte matched.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace toy::server {

class StopText {
 public:
  explicit StopText(std::vector<std::string> stops);

  // Adds generated text; returns the text that is now final (maybe empty).
  // Once a stop sequence is found, matched() is true and later text is dropped.
  std::string push(std::string_view text);
  // At the end of generation: the held-back tail (nothing after a match).
  std::string flush();
  bool matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;  // text not yet released: a possible start of a stop sequence
  bool matched_ = false;
};

}  // namespace toy::server
