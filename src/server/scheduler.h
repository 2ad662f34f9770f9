// Continuous batching: one scheduler thread owns the model (a BatchDecoder of P
// slots). Requests (Jobs) wait in a FIFO queue; between steps, waiting jobs take
// free slots (the one whose cache shares the longest prefix with the prompt),
// new prompts are prefilled a chunk at a time, and every slot that is
// generating advances by one token in ONE batched forward pass. A finished or
// cancelled job leaves its slot at once. HTTP threads wait on their Job for
// output and cancel it when their client disconnects.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "infer/batch_decode.h"
#include "server/generation.h"
#include "server/metrics.h"
#include "tokenizer/tokenizer.h"

namespace toy::server {

enum class FinishReason { None, Stop, Length, Cancelled, Error };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", ...

// One generated token with its log-probability (of the distribution sampled from,
// before temperature) and, when asked, the most likely alternatives.
struct TokenInfo {
  int32_t id = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // (id, logprob), most likely first
};

// What a job produced since the consumer last looked.
struct JobOutput {
  std::string text;               // final text (stop sequences and partial characters resolved)
  std::vector<TokenInfo> tokens;  // tokens sampled (filled only when logprobs were asked)
};

// The totals of a finished job.
struct JobResult {
  FinishReason finish = FinishReason::None;
  std::string error;          // FinishReason::Error
  int64_t prompt_tokens = 0;  // the whole prompt
  int64_t cached_tokens = 0;  // of which reused from the slot's cache
  int64_t completion_tokens = 0;
};

class Job {
 public:
  Job(std::vector<int32_t> prompt, GenerationParams params)
      : prompt_(std::move(prompt)), params_(std::move(params)) {}

  // Waits up to `timeout` for output or the end; appends what arrived to `out`.
  // Returns true once the job has finished and everything it produced was handed over.
  bool wait(JobOutput& out, std::chrono::milliseconds timeout);
  // Stops the generation at the next step (the client went away).
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  // Valid once wait() returned true.
  const JobResult& result() const { return result_; }
  // Tokens generated so far (for the log line of a request whose client went away).
  int64_t generated() const { return generated_.load(); }

 private:
  friend class Scheduler;
  void emit(std::string text, const TokenInfo* token);
  void finish(const JobResult& result);

  const std::vector<int32_t> prompt_;
  const GenerationParams params_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int64_t> generated_{0};
  std::mutex mutex_;
  std::condition_variable ready_;
  JobOutput pending_;  // guarded by mutex_
  bool done_ = false;  // guarded by mutex_
  JobResult result_;   // written before done_ is set
};

struct SchedulerOptions {
  int64_t max_queue = 1024;     // jobs waiting beyond the slots; more are refused (503)
  int64_t prefill_chunk = 512;  // prompt tokens per forward between decode steps
};

class Scheduler {
 public:
  // decoder, tokenizer and metrics must outlive the scheduler. Starts its thread.
  Scheduler(BatchDecoder& decoder, const tokenizer::Tokenizer& tokenizer, Metrics& metrics,
            const SchedulerOptions& options = {});
  ~Scheduler();  // cancels every job and joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job (prompt: 1..n_ctx-1 tokens in the vocabulary, checked by the caller).
  // Throws ApiError 503 when the queue is full or the scheduler is stopping.
  void submit(const std::shared_ptr<Job>& job);
  // Cancels every queued and running job (shutdown after the grace period).
  void cancel_all();
  int64_t n_ctx() const { return decoder_.n_ctx(); }

 private:
  struct Slot;
  void run();
  void admit();
  void retire_cancelled();
  void prefill_one();
  void decode_step();
  void sample(Slot& slot, std::span<const float> logits);
  void finish(Slot& slot, FinishReason reason, const std::string& error = "");

  BatchDecoder& decoder_;
  const tokenizer::Tokenizer& tokenizer_;
  Metrics& metrics_;
  SchedulerOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;  // (P), touched by the scheduler thread only
  size_t next_prefill_ = 0;                   // round robin over prefilling slots
  std::vector<int> step_slots_;               // (P) slots of one decode step
  std::vector<int32_t> step_tokens_;          // (P) their tokens

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;     // guarded by mutex_
  std::vector<std::shared_ptr<Job>> running_;  // holding a slot; guarded by mutex_
  bool stopping_ = false;                      // guarded by mutex_
  std::thread thread_;
};

}  // namespace toy::server
