// What one request asks the scheduler to generate: the sampling chain, OpenAI's
// penalties and logit bias, the length limit, stop strings and logprobs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "infer/sampler.h"

namespace toy::server {

struct GenerationParams {
  // OpenAI's defaults (temperature 1, top_p 1), not llama.cpp's CLI ones: top_k and
  // min_p are off unless a request sets them (llama-server's extension fields).
  SamplerParams sampler{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f};
  bool seeded = false;             // sampler.seed came from the request
  float presence_penalty = 0.0f;   // subtracted once from the logit of every token generated so far
  float frequency_penalty = 0.0f;  // subtracted per occurrence in the generated tokens
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, bias added to its logit)
  int64_t max_tokens = -1;                            // -1: until end of text or a full context
  std::vector<std::string> stop;  // up to 4; the text ends before the first one found
  int top_logprobs = -1;          // -1: no logprobs; else the sampled token's and this many others
};

}  // namespace toy::server
