// The continuous-batching scheduler on a real model (stories260K): jobs decoded
// together give the same text as separate greedy sessions, whatever joins or
// leaves the batch; cancellation, limits, stop sequences and prefix reuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "infer/batch_decode.h"
#include "infer/session.h"
#include "kernels/cpu/features.h"
#include "model/model.h"
#include "server/scheduler.h"
#include "support/fixtures.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"

namespace toy::server {
namespace {

using namespace std::chrono_literals;

constexpr int32_t kEos = 2;  // stories260K

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = std::make_unique<Model>(Model::load(testing::fixture_path("models/stories260K.gguf")));
    tok_ = tokenizer::Tokenizer::from_gguf(*model_->file);
  }

  std::vector<int32_t> prompt(const std::string& text) const {
    return tok_->tokenize(text, {.add_special = true});
  }

  // What a lone greedy session writes after `ids` in at most n tokens (until end of text).
  std::string greedy_alone(const std::vector<int32_t>& ids, int n) {
    // The one-query-at-a-time attention: a row's arithmetic then does not depend on the rows
    // it is batched with (the tiled kernel splits a lone decode row's keys over the threads,
    // which sums in another order and can flip a greedy near-tie).
    // Its own pool: the scheduler's thread is still decoding the other jobs on pool_.
    Session session(*model_, alone_pool_,
                    {.kv_type = DType::F32, .attention = AttentionKernel::Plain});
    std::span<const float> logits = session.prefill(ids);
    tokenizer::StreamingDetokenizer stream(*tok_);
    std::string text;
    for (int i = 0; i < n; ++i) {
      const auto id =
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      if (tok_->is_eog(id)) break;
      text += stream.push(id);
      logits = session.decode(id);
    }
    return text + stream.finish();
  }

  static GenerationParams greedy(int64_t max_tokens) {
    GenerationParams p;
    p.sampler.temperature = 0.0f;
    p.max_tokens = max_tokens;
    return p;
  }

  // Everything a job writes, once it has finished.
  static std::string collect(Job& job) {
    JobOutput out;
    while (!job.wait(out, 1000ms)) {
    }
    return out.text;
  }

  ThreadPool pool_{2};
  ThreadPool alone_pool_{2};
  std::unique_ptr<Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  Metrics metrics_;
};

TEST_F(SchedulerTest, BatchedJobsEqualSeparateGreedySessions) {
  BatchDecoder decoder(
      *model_, Compute{pool_, cpu::host_backend()},
      {.n_slots = 3, .n_ctx = 256, .kv_type = DType::F32, .attention = AttentionKernel::Plain});
  Scheduler scheduler(decoder, *tok_, metrics_);
  const std::vector<std::string> texts = {
      "Once upon a time", "The little dog",   "Lily and Tom went to the park. They saw",
      "One day, a bird",  "Max liked to run", "The sun was hot"};
  // Five jobs on three slots: some wait for a slot and join a running batch.
  std::vector<std::shared_ptr<Job>> jobs;
  for (size_t i = 0; i < texts.size(); ++i)
    jobs.push_back(std::make_shared<Job>(prompt(texts[i]), greedy(10 + 4 * i)));
  for (const auto& job : jobs) scheduler.submit(job);
  for (size_t i = 0; i < jobs.size(); ++i) {
    const std::string got = collect(*jobs[i]);
    EXPECT_EQ(got, greedy_alone(prompt(texts[i]), 10 + 4 * static_cast<int>(i))) << texts[i];
    EXPECT_NE(jobs[i]->result().finish, FinishReason::Error) << jobs[i]->result().error;
    EXPECT_EQ(jobs[i]->result().prompt_tokens, static_cast<int64_t>(prompt(texts[i]).size()));
  }
  EXPECT_GT(metrics_.decode_rows.load(), metrics_.decode_steps.load());  // batches of > 1
  EXPECT_EQ(metrics_.requests_processing.load(), 0);
  EXPECT_EQ(metrics_.requests_queued.load(), 0);
}

TEST_F(SchedulerTest, MaxTokensAndLengthFinish) {
  BatchDecoder decoder(*model_, Compute{pool_, cpu::host_backend()}, {.n_slots = 1, .n_ctx = 64});
  Scheduler scheduler(decoder, *tok_, metrics_);
  GenerationParams p = greedy(1);
  p.logit_bias = {{kEos, -100.0f}};
  auto one = std::make_shared<Job>(prompt("Once upon a time"), p);
  scheduler.submit(one);
  collect(*one);
  EXPECT_EQ(one->result().completion_tokens, 1);
  EXPECT_EQ(one->result().finish, FinishReason::Length);
  // Unlimited: the context (64) ends it; the last token is sampled from position 63's
  // logits and needs no room of its own.
  p.max_tokens = -1;
  auto full = std::make_shared<Job>(prompt("Once upon a time"), p);
  scheduler.submit(full);
  collect(*full);
  EXPECT_EQ(full->result().finish, FinishReason::Length);
  EXPECT_EQ(full->result().prompt_tokens + full->result().completion_tokens, 65);
}

TEST_F(SchedulerTest, StopSequenceEndsTheText) {
  BatchDecoder decoder(*model_, Compute{pool_, cpu::host_backend()}, {.n_slots = 2, .n_ctx = 128});
  Scheduler scheduler(decoder, *tok_, metrics_);
  GenerationParams p = greedy(40);
  p.stop = {"Lily"};
  auto job = std::make_shared<Job>(prompt("Once upon a time"), p);
  scheduler.submit(job);
  EXPECT_EQ(collect(*job), ", there was a little girl named ");
  EXPECT_EQ(job->result().finish, FinishReason::Stop);
}

TEST_F(SchedulerTest, CancelStopsAtTheNextStep) {
  BatchDecoder decoder(*model_, Compute{pool_, cpu::host_backend()}, {.n_slots = 2, .n_ctx = 512});
  Scheduler scheduler(decoder, *tok_, metrics_);
  GenerationParams p = greedy(-1);
  p.logit_bias = {{kEos, -100.0f}};
  auto job = std::make_shared<Job>(prompt("Once upon a time"), p);
  auto other = std::make_shared<Job>(prompt("The little dog"), greedy(5));
  scheduler.submit(job);
  JobOutput out;
  while (out.text.empty()) ASSERT_FALSE(job->wait(out, 1000ms));
  job->cancel();
  scheduler.submit(other);
  collect(*job);
  EXPECT_EQ(job->result().finish, FinishReason::Cancelled);
  EXPECT_LT(job->result().completion_tokens, 500);
  collect(*other);
  EXPECT_EQ(other->result().completion_tokens, 5);  // the batch goes on without it
  EXPECT_EQ(metrics_.completions_cancelled.load(), 1u);
}

TEST_F(SchedulerTest, ASlotReusesItsCachedPrefix) {
  BatchDecoder decoder(*model_, Compute{pool_, cpu::host_backend()}, {.n_slots = 1, .n_ctx = 128});
  Scheduler scheduler(decoder, *tok_, metrics_);
  const std::vector<int32_t> first = prompt("Once upon a time, there was a little dog");
  auto a = std::make_shared<Job>(first, greedy(4));
  scheduler.submit(a);
  collect(*a);
  EXPECT_EQ(a->result().cached_tokens, 0);
  std::vector<int32_t> longer = first;
  for (int32_t id : tok_->tokenize(" who liked to run")) longer.push_back(id);
  auto b = std::make_shared<Job>(longer, greedy(4));
  scheduler.submit(b);
  const std::string text = collect(*b);
  EXPECT_GE(b->result().cached_tokens, static_cast<int64_t>(first.size()));
  EXPECT_EQ(text, greedy_alone(longer, 4));
}

TEST_F(SchedulerTest, SeededSamplingRepeats) {
  BatchDecoder decoder(*model_, Compute{pool_, cpu::host_backend()}, {.n_slots = 2, .n_ctx = 128});
  Scheduler scheduler(decoder, *tok_, metrics_);
  GenerationParams p;
  p.sampler.seed = 7;
  p.seeded = true;
  p.max_tokens = 30;
  auto a = std::make_shared<Job>(prompt("Once upon a time"), p);
  auto b = std::make_shared<Job>(prompt("Once upon a time"), p);
  scheduler.submit(a);
  scheduler.submit(b);  // decoded in the same batch
  EXPECT_EQ(collect(*a), collect(*b));
}

TEST_F(SchedulerTest, DestructionCancelsWaitingAndRunningJobs) {
  auto decoder = std::make_unique<BatchDecoder>(*model_, Compute{pool_, cpu::host_backend()},
                                                BatchDecoderOptions{.n_slots = 1, .n_ctx = 512});
  GenerationParams p = greedy(-1);
  p.logit_bias = {{kEos, -100.0f}};
  auto running = std::make_shared<Job>(prompt("Once"), p);
  auto waiting = std::make_shared<Job>(prompt("Twice"), p);
  {
    Scheduler scheduler(*decoder, *tok_, metrics_);
    scheduler.submit(running);
    scheduler.submit(waiting);
  }
  collect(*running);
  collect(*waiting);
  EXPECT_NE(running->result().finish, FinishReason::None);
  EXPECT_EQ(waiting->result().finish, FinishReason::Cancelled);
}

}  // namespace
}  // namespace toy::server
