#include "infer/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace toy {

Sampler::Sampler(const SamplerParams& params, int64_t n_vocab)
    : params_(params),
      n_vocab_(n_vocab),
      candidates_(static_cast<size_t>(n_vocab)),
      recent_(static_cast<size_t>(std::max<int32_t>(params.repeat_last_n, 0))),
      rng_(params.seed) {
  if (n_vocab <= 0) fail("sampler needs a vocabulary");
  if (!(params.top_p > 0.0f)) fail("--top-p must be > 0, got ", params.top_p);
  if (params.min_p >= 1.0f) fail("--min-p must be < 1, got ", params.min_p);
  if (!(params.repeat_penalty > 0.0f))
    fail("--repeat-penalty must be > 0, got ", params.repeat_penalty);
}

void Sampler::accept(int32_t token) {
  if (recent_.empty()) return;
  recent_[recent_next_] = token;
  recent_next_ = (recent_next_ + 1) % recent_.size();
  recent_count_ = std::min(recent_count_ + 1, recent_.size());
}

// llama.cpp's penalty: divide positive logits, multiply negative ones, once per distinct token.
void Sampler::apply_repeat_penalty() {
  if (params_.repeat_penalty == 1.0f || recent_count_ == 0) return;
  for (size_t i = 0; i < recent_count_; ++i) {
    const int32_t id = recent_[i];
    if (id < 0 || id >= n_vocab_) continue;
    bool seen = false;
    for (size_t j = 0; j < i; ++j) seen |= recent_[j] == id;
    if (seen) continue;
    float& logit = candidates_[static_cast<size_t>(id)].logit;
    logit = logit > 0.0f ? logit / params_.repeat_penalty : logit * params_.repeat_penalty;
  }
}

void Sampler::softmax() {
  float max = candidates_[0].logit;
  for (size_t i = 1; i < size_; ++i) max = std::max(max, candidates_[i].logit);
  double sum = 0.0;
  for (size_t i = 0; i < size_; ++i) {
    candidates_[i].p = std::exp(candidates_[i].logit - max);
    sum += candidates_[i].p;
  }
  for (size_t i = 0; i < size_; ++i) candidates_[i].p = static_cast<float>(candidates_[i].p / sum);
}

// Keeps the k largest logits, sorted in descending order (ties: lower id first).
void Sampler::top_k(int32_t k) {
  const size_t keep = k > 0 ? std::min(size_, static_cast<size_t>(k)) : size_;
  auto greater = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep),
                    candidates_.begin() + static_cast<std::ptrdiff_t>(size_), greater);
  size_ = keep;
}

// Keeps the smallest prefix (of the sorted candidates) whose probability reaches p.
void Sampler::top_p(float p) {
  if (p >= 1.0f) return;
  softmax();
  double cumulative = 0.0;
  for (size_t i = 0; i < size_; ++i) {
    cumulative += candidates_[i].p;
    if (cumulative >= p) {
      size_ = i + 1;
      return;
    }
  }
}

// Keeps candidates whose probability is at least p times the best one's.
void Sampler::min_p(float p) {
  if (p <= 0.0f) return;
  const float threshold = candidates_[0].logit + std::log(p);  // sorted: [0] is the best
  size_t keep = 1;
  while (keep < size_ && candidates_[keep].logit >= threshold) ++keep;
  size_ = keep;
}

void Sampler::exclude(std::span<const int32_t> ids) {
  for (int32_t id : ids)
    if (id >= 0 && id < n_vocab_) excluded_.push_back(id);
}

int32_t Sampler::sample(std::span<const float> logits) {
  TOY_CHECK(static_cast<int64_t>(logits.size()) == n_vocab_, "logits of ", logits.size(),
            " entries for a vocabulary of ", n_vocab_);
  size_ = static_cast<size_t>(n_vocab_);
  for (size_t i = 0; i < size_; ++i) candidates_[i] = {static_cast<int32_t>(i), logits[i], 0.0f};
  for (int32_t id : excluded_) candidates_[size_t(id)].logit = -INFINITY;
  apply_repeat_penalty();
  if (params_.temperature <= 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < size_; ++i)
      if (candidates_[i].logit > candidates_[best].logit) best = i;
    return candidates_[best].id;
  }
  // Sorting the whole vocabulary (top-k off) is the costliest step of sampling a large
  // vocabulary; it is needed only by a filter. Unfiltered, the draw walks ids in order.
  if (params_.top_k > 0 || params_.top_p < 1.0f || params_.min_p > 0.0f) {
    top_k(params_.top_k);  // also sorts, which top-p and min-p rely on
    top_p(params_.top_p);
    min_p(params_.min_p);
  }
  for (size_t i = 0; i < size_; ++i) candidates_[i].logit /= params_.temperature;
  softmax();
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  double cumulative = 0.0;
  for (size_t i = 0; i < size_; ++i) {
    cumulative += candidates_[i].p;
    if (u < cumulative) return candidates_[i].id;
  }
  return candidates_[size_ - 1].id;
}

}  // namespace toy
