// BatchDecoder (continuous batching): P sequences decoded together in one forward
// pass per step give the same tokens as P separate sessions; a slot reuses the
// cached prefix of its previous prompt.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "infer/batch_decode.h"
#include "infer/session.h"
#include "kernels/cpu/features.h"
#include "model/model.h"
#include "support/fixtures.h"

namespace toy {
namespace {

Model load(const char* name) {
  return Model::load(testing::fixture_path(std::string("models/") + name + ".gguf"));
}

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// Greedy continuation of `prompt` by a Session of its own.
std::vector<int32_t> greedy_alone(const Model& model, ThreadPool& pool,
                                  const std::vector<int32_t>& prompt, int n) {
  Session session(model, pool, {.kv_type = DType::F32});
  std::span<const float> logits = session.prefill(prompt);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(argmax(logits));
    logits = session.decode(out.back());
  }
  return out;
}

// Prompts of different lengths, so the slots decode at different positions.
std::vector<std::vector<int32_t>> prompts(int64_t n_vocab) {
  std::vector<std::vector<int32_t>> out;
  for (int s = 0; s < 4; ++s) {
    std::vector<int32_t> ids{1};
    for (int i = 0; i < 3 + 5 * s; ++i)
      ids.push_back(static_cast<int32_t>((i * 37 + s * 11 + 5) % n_vocab));
    out.push_back(ids);
  }
  return out;
}

void expect_batched_equals_separate(const char* fixture) {
  const Model model = load(fixture);
  ThreadPool pool(2);
  const auto ps = prompts(model.config.n_vocab);
  const int n_gen = 12;
  BatchDecoder batch(model, Compute{pool, cpu::host_backend()},
                     {.n_slots = 4, .n_ctx = 128, .kv_type = DType::F32});
  std::vector<std::vector<int32_t>> got(ps.size());
  std::vector<int32_t> next(ps.size());
  for (int s = 0; s < 4; ++s) next[s] = argmax(batch.prefill(s, ps[s]));
  // Slot 3 joins late and slot 1 leaves early: the batch changes between steps.
  for (int step = 0; step < n_gen; ++step) {
    std::vector<int> slots;
    std::vector<int32_t> tokens;
    for (int s = 0; s < 4; ++s) {
      if (s == 3 && step < 4) continue;
      if (s == 1 && static_cast<int>(got[1].size()) == n_gen / 2) continue;
      got[s].push_back(next[s]);
      slots.push_back(s);
      tokens.push_back(next[s]);
    }
    const auto logits = batch.decode(slots, tokens);
    for (size_t i = 0; i < slots.size(); ++i)
      next[slots[i]] = argmax(logits.subspan(i * model.config.n_vocab, model.config.n_vocab));
  }
  for (int s = 0; s < 4; ++s) {
    const auto want = greedy_alone(model, pool, ps[s], static_cast<int>(got[s].size()));
    EXPECT_EQ(got[s], want) << fixture << " slot " << s;
    EXPECT_EQ(batch.n_past(s), static_cast<int64_t>(ps[s].size() + got[s].size()));
  }
}

TEST(BatchDecoder, BatchedGreedyEqualsSeparateSessionsStories) {
  expect_batched_equals_separate("stories260K");
}

TEST(BatchDecoder, BatchedGreedyEqualsSeparateSessionsGqaQwen2) {
  expect_batched_equals_separate("qwen2");  // biases, half-split RoPE, GQA
}

TEST(BatchDecoder, ReusedPrefixGivesTheSameLogits) {
  const Model model = load("stories260K");
  ThreadPool pool(1);
  BatchDecoder batch(model, Compute{pool, cpu::host_backend()},
                     {.n_slots = 2, .n_ctx = 64, .kv_type = DType::F32});
  const std::vector<int32_t> first{1, 10, 20, 30, 40, 50};
  const std::vector<int32_t> second{1, 10, 20, 30, 99, 98, 97};
  batch.prefill(0, first);
  const int64_t keep = batch.common_prefix(0, second);
  EXPECT_EQ(keep, 4);
  batch.truncate(0, keep);
  const auto reused = batch.prefill(0, std::span(second).subspan(keep));
  const std::vector<float> a(reused.begin(), reused.end());
  const auto fresh = batch.prefill(1, second);
  ASSERT_EQ(a.size(), fresh.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], fresh[i], 1e-5f) << i;
  EXPECT_EQ(batch.n_past(0), 7);
}

TEST(BatchDecoder, OverflowAndBadTokensAreErrorsThatChangeNothing) {
  const Model model = load("stories260K");
  ThreadPool pool(1);
  BatchDecoder batch(model, Compute{pool, cpu::host_backend()}, {.n_slots = 2, .n_ctx = 8});
  EXPECT_THROW(batch.prefill(0, std::vector<int32_t>(9, 5)), Error);
  EXPECT_THROW(batch.prefill(0, std::vector<int32_t>{1, 512}), Error);
  EXPECT_EQ(batch.n_past(0), 0);
  batch.prefill(0, std::vector<int32_t>(8, 5));
  const std::vector<int> slots{0};
  const std::vector<int32_t> tokens{5};
  EXPECT_THROW(batch.decode(slots, tokens), Error);
  EXPECT_EQ(batch.n_past(0), 8);
}

}  // namespace
}  // namespace toy
