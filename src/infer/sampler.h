// Sampler: picks the next token from logits through llama.cpp's default chain
//   repeat penalty -> top-k -> top-p -> min-p -> temperature -> seeded draw
// (temperature <= 0 short-cuts to greedy arg-max after the penalty). Buffers
// are sized once for the vocabulary, so sampling does not allocate.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace toy {

struct SamplerParams {
  float temperature = 0.8f;     // <= 0: greedy
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;   // tokens the penalty looks back over
  uint64_t seed = 0;
};

class Sampler {
 public:
  Sampler(const SamplerParams& params, int64_t n_vocab);

  // The next token for `logits` (n_vocab). Does not record it: call accept().
  int32_t sample(std::span<const float> logits);
  // Records a token of the sequence (prompt or generated) for the repeat penalty.
  void accept(int32_t token);
  // Tokens never to sample (llama.cpp's --ignore-eos: a logit bias of -inf on the
  // end-of-generation tokens); ids outside the vocabulary are ignored.
  void exclude(std::span<const int32_t> ids);

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  void apply_repeat_penalty();
  void top_k(int32_t k);
  void top_p(float p);
  void min_p(float p);
  void softmax();

  SamplerParams params_;
  int64_t n_vocab_;
  std::vector<Candidate> candidates_;  // (n_vocab) capacity, the live prefix is [0, size_)
  size_t size_ = 0;
  std::vector<int32_t> excluded_;
  std::vector<int32_t> recent_;  // ring of the last repeat_last_n tokens
  size_t recent_next_ = 0;
  size_t recent_count_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace toy
