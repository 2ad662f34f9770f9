// The sampler chain: greedy, each filter, the repeat penalty, and seeded draws.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "infer/sampler.h"

namespace toy {
namespace {

SamplerParams plain(float temperature) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 7;
  return p;
}

const std::vector<float> kLogits = {0.5f, 3.0f, -1.0f, 2.9f, 0.0f, 1.0f};

TEST(Sampler, GreedyAtZeroTemperature) {
  Sampler s(plain(0.0f), 6);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(kLogits), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplerParams p = plain(5.0f);
  p.top_k = 1;
  Sampler s(p, 6);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(kLogits), 1);
}

TEST(Sampler, TopKTwoDrawsOnlyTheTwoBest) {
  SamplerParams p = plain(1.0f);
  p.top_k = 2;
  Sampler s(p, 6);
  int seen[6] = {};
  for (int i = 0; i < 400; ++i) ++seen[s.sample(kLogits)];
  EXPECT_GT(seen[1], 100);
  EXPECT_GT(seen[3], 100);
  EXPECT_EQ(seen[0] + seen[2] + seen[4] + seen[5], 0);
}

// --ignore-eos: excluded ids are never drawn, greedy or sampled, however likely.
TEST(Sampler, ExcludedTokensAreNeverSampled) {
  const std::vector<int32_t> excluded = {1, 99, -3};  // the best id, and two outside the vocabulary
  Sampler greedy(plain(0.0f), 6);
  greedy.exclude(excluded);
  EXPECT_EQ(greedy.sample(kLogits), 3);
  SamplerParams p = plain(1.0f);
  p.top_k = 2;
  Sampler sampled(p, 6);
  sampled.exclude(excluded);
  int seen[6] = {};
  for (int i = 0; i < 400; ++i) ++seen[sampled.sample(kLogits)];
  EXPECT_EQ(seen[1], 0);
  EXPECT_GT(seen[3], 100);
  EXPECT_GT(seen[5], 50);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  SamplerParams p = plain(1.0f);
  p.min_p = 0.5f;  // keeps tokens with p >= 0.5 * p_max: logits >= 3 - ln 2
  Sampler s(p, 6);
  for (int i = 0; i < 200; ++i) {
    const int32_t id = s.sample(kLogits);
    EXPECT_TRUE(id == 1 || id == 3) << id;
  }
}

TEST(Sampler, TopPKeepsTheSmallestSufficientPrefix) {
  SamplerParams p = plain(1.0f);
  p.top_p = 0.5f;  // token 1 alone has p ~ 0.44 < 0.5, with token 3 ~ 0.84
  Sampler s(p, 6);
  for (int i = 0; i < 200; ++i) {
    const int32_t id = s.sample(kLogits);
    EXPECT_TRUE(id == 1 || id == 3) << id;
  }
}

TEST(Sampler, RepeatPenaltyDemotesSeenTokens) {
  SamplerParams p = plain(0.0f);
  p.repeat_penalty = 1.5f;
  Sampler s(p, 6);
  EXPECT_EQ(s.sample(kLogits), 1);
  s.accept(1);  // 3.0 / 1.5 = 2.0 < 2.9
  EXPECT_EQ(s.sample(kLogits), 3);
  // Negative logits are multiplied (pushed further down), not divided.
  const std::vector<float> negative = {-1.0f, -1.2f};
  Sampler n(p, 2);
  n.accept(0);  // -1.5 < -1.2
  EXPECT_EQ(n.sample(negative), 1);
}

TEST(Sampler, SeededDrawsFollowTheSoftmax) {
  Sampler a(plain(1.0f), 6), b(plain(1.0f), 6);
  std::vector<int> counts(6);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const int32_t x = a.sample(kLogits);
    EXPECT_EQ(x, b.sample(kLogits));  // same seed, same stream
    ++counts[x];
  }
  double sum = 0;
  for (float l : kLogits) sum += std::exp(double(l));
  for (int i = 0; i < 6; ++i) {
    const double expected = std::exp(double(kLogits[i])) / sum;
    EXPECT_NEAR(counts[i] / double(n), expected, 0.015) << i;
  }
}

TEST(Sampler, BadParametersAreErrors) {
  SamplerParams p = plain(1.0f);
  p.top_p = 0.0f;
  EXPECT_THROW(Sampler(p, 6), Error);
  p = plain(1.0f);
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler(p, 6), Error);
}

}  // namespace
}  // namespace toy
