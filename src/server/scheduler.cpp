#include "server/scheduler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>

#include "core/error.h"
#include "core/timer.h"
#include "infer/sampler.h"
#include "server/api_error.h"
#include "server/stop_text.h"
#include "tokenizer/stream.h"

namespace toy::server {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Length:
      return "length";
    case FinishReason::Cancelled:
      return "cancelled";
    case FinishReason::Error:
      return "error";
    case FinishReason::None:
      break;
  }
  return "none";
}

bool Job::wait(JobOutput& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout,
                  [&] { return done_ || !pending_.text.empty() || !pending_.tokens.empty(); });
  out.text += pending_.text;
  pending_.text.clear();
  for (TokenInfo& t : pending_.tokens) out.tokens.push_back(std::move(t));
  pending_.tokens.clear();
  return done_;
}

void Job::emit(std::string text, const TokenInfo* token) {
  if (text.empty() && !token) return;
  {
    std::lock_guard lock(mutex_);
    pending_.text += text;
    if (token) pending_.tokens.push_back(*token);
  }
  ready_.notify_all();
}

void Job::finish(const JobResult& result) {
  {
    std::lock_guard lock(mutex_);
    result_ = result;
    done_ = true;
  }
  ready_.notify_all();
}

// One sequence of the batch: the job it serves and that job's generation state.
struct Scheduler::Slot {
  enum class State { Idle, Prefill, Decode };
  int index = 0;
  State state = State::Idle;
  std::shared_ptr<Job> job;
  std::vector<int32_t> to_prefill;  // the prompt tokens not in the cache yet
  size_t prefilled = 0;             // of to_prefill
  std::unique_ptr<Sampler> sampler;
  std::optional<tokenizer::StreamingDetokenizer> detok;
  std::optional<StopText> stop;
  std::vector<float> work;       // (n_vocab) logits after bias and penalties
  std::vector<int32_t> counts;   // (n_vocab) occurrences of each generated token
  std::vector<int32_t> touched;  // ids with counts != 0
  int32_t next = -1;             // sampled, to be fed at the next decode step
  JobResult result;
};

Scheduler::Scheduler(BatchDecoder& decoder, const tokenizer::Tokenizer& tokenizer, Metrics& metrics,
                     const SchedulerOptions& options)
    : decoder_(decoder), tokenizer_(tokenizer), metrics_(metrics), options_(options) {
  const size_t n_vocab = static_cast<size_t>(decoder.n_vocab());
  for (int s = 0; s < decoder.n_slots(); ++s) {
    auto slot = std::make_unique<Slot>();
    slot->index = s;
    slot->work.resize(n_vocab);
    slot->counts.assign(n_vocab, 0);
    slots_.push_back(std::move(slot));
  }
  metrics_.slots = decoder.n_slots();
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Scheduler::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw ApiError(503, "the server is shutting down", "server_error");
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue)
      throw ApiError(503, str("the server is busy (", queue_.size(), " requests waiting)"),
                     "server_error");
    queue_.push_back(job);
    metrics_.requests_queued.fetch_add(1);
  }
  wake_.notify_all();
}

void Scheduler::cancel_all() {
  std::lock_guard lock(mutex_);
  for (const auto& job : queue_) job->cancel();
  for (const auto& job : running_) job->cancel();
}

void Scheduler::run() {
  while (true) {
    {
      std::unique_lock lock(mutex_);
      const auto busy = [&] {
        return std::any_of(slots_.begin(), slots_.end(),
                           [](const auto& s) { return s->state != Slot::State::Idle; });
      };
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || busy(); });
      if (stopping_) {
        for (const auto& job : queue_) {
          JobResult r;
          r.finish = FinishReason::Cancelled;
          r.prompt_tokens = static_cast<int64_t>(job->prompt_.size());
          job->finish(r);
        }
        metrics_.requests_queued.fetch_sub(static_cast<int64_t>(queue_.size()));
        queue_.clear();
        lock.unlock();
        for (const auto& slot : slots_)
          if (slot->state != Slot::State::Idle) finish(*slot, FinishReason::Cancelled);
        return;
      }
    }
    admit();
    retire_cancelled();
    prefill_one();
    decode_step();
  }
}

void Scheduler::admit() {
  while (true) {
    std::shared_ptr<Job> job;
    Slot* slot = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) return;
      // The free slot whose cache shares the longest prefix with the prompt.
      int64_t best = -1;
      for (const auto& s : slots_) {
        if (s->state != Slot::State::Idle) continue;
        const int64_t common = decoder_.common_prefix(s->index, queue_.front()->prompt_);
        if (common > best) best = common, slot = s.get();
      }
      if (!slot) return;
      job = queue_.front();
      queue_.pop_front();
      metrics_.requests_queued.fetch_sub(1);
    }
    const std::vector<int32_t>& prompt = job->prompt_;
    const GenerationParams& p = job->params_;
    // At least the last prompt token is run again: its logits give the first token.
    const int64_t keep = std::min<int64_t>(decoder_.common_prefix(slot->index, prompt),
                                           static_cast<int64_t>(prompt.size()) - 1);
    decoder_.truncate(slot->index, keep);
    slot->to_prefill.assign(prompt.begin() + keep, prompt.end());
    slot->prefilled = 0;
    slot->result = JobResult{};
    slot->result.prompt_tokens = static_cast<int64_t>(prompt.size());
    slot->result.cached_tokens = keep;
    SamplerParams sp = p.sampler;
    if (!p.seeded) sp.seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
    slot->sampler = std::make_unique<Sampler>(sp, decoder_.n_vocab());
    for (int32_t id : prompt) slot->sampler->accept(id);
    slot->detok.emplace(tokenizer_);
    slot->stop.emplace(p.stop);
    for (int32_t id : slot->touched) slot->counts[static_cast<size_t>(id)] = 0;
    slot->touched.clear();
    slot->job = job;
    {
      std::lock_guard lock(mutex_);
      running_.push_back(job);
    }
    slot->state = Slot::State::Prefill;
    metrics_.requests_processing.fetch_add(1);
    metrics_.prompt_tokens_cached.fetch_add(static_cast<uint64_t>(keep));
  }
}

void Scheduler::retire_cancelled() {
  for (const auto& slot : slots_)
    if (slot->state != Slot::State::Idle && slot->job->cancelled())
      finish(*slot, FinishReason::Cancelled);
}

void Scheduler::prefill_one() {
  // Round robin, one chunk per step, so a long prompt does not stall the others.
  for (size_t k = 0; k < slots_.size(); ++k) {
    Slot& slot = *slots_[(next_prefill_ + k) % slots_.size()];
    if (slot.state != Slot::State::Prefill) continue;
    next_prefill_ = (next_prefill_ + k + 1) % slots_.size();
    const size_t n = std::min<size_t>(static_cast<size_t>(options_.prefill_chunk),
                                      slot.to_prefill.size() - slot.prefilled);
    const Timer timer;
    try {
      const std::span<const float> logits = decoder_.prefill(
          slot.index, std::span<const int32_t>(slot.to_prefill).subspan(slot.prefilled, n));
      slot.prefilled += n;
      metrics_.prompt_tokens.fetch_add(n);
      metrics_.prompt_microseconds.fetch_add(static_cast<uint64_t>(timer.seconds() * 1e6));
      if (slot.prefilled == slot.to_prefill.size()) sample(slot, logits);
    } catch (const std::exception& e) {
      finish(slot, FinishReason::Error, e.what());
    }
    return;
  }
}

void Scheduler::decode_step() {
  std::vector<int>& slots = step_slots_;
  std::vector<int32_t>& tokens = step_tokens_;
  slots.clear();
  tokens.clear();
  for (const auto& slot : slots_) {
    if (slot->state != Slot::State::Decode) continue;
    slots.push_back(slot->index);
    tokens.push_back(slot->next);
  }
  if (slots.empty()) return;
  const Timer timer;
  try {
    const std::span<const float> logits = decoder_.decode(slots, tokens);
    metrics_.decode_microseconds.fetch_add(static_cast<uint64_t>(timer.seconds() * 1e6));
    metrics_.decode_steps.fetch_add(1);
    metrics_.decode_rows.fetch_add(slots.size());
    const size_t V = static_cast<size_t>(decoder_.n_vocab());
    for (size_t i = 0; i < slots.size(); ++i)
      sample(*slots_[static_cast<size_t>(slots[i])], logits.subspan(i * V, V));
  } catch (const std::exception& e) {
    for (int s : slots) finish(*slots_[static_cast<size_t>(s)], FinishReason::Error, e.what());
  }
}

namespace {

// log p(id) for every id is logit - logsumexp(logits); the top alternatives by logit.
void fill_logprobs(TokenInfo& info, std::span<const float> logits, int top) {
  float max = logits[0];
  for (float l : logits) max = std::max(max, l);
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max));
  const float lse = max + static_cast<float>(std::log(sum));
  info.logprob = logits[static_cast<size_t>(info.id)] - lse;
  info.top.clear();
  if (top <= 0) return;
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  const size_t k = std::min(order.size(), static_cast<size_t>(top));
  std::partial_sort(
      order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
      [&](int32_t a, int32_t b) {
        return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
               (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
      });
  for (size_t i = 0; i < k; ++i)
    info.top.emplace_back(order[i], logits[static_cast<size_t>(order[i])] - lse);
}

}  // namespace

void Scheduler::sample(Slot& slot, std::span<const float> logits) {
  const GenerationParams& p = slot.job->params_;
  std::span<const float> use = logits;
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f || !p.logit_bias.empty()) {
    // OpenAI: logit[j] -= c[j]·frequency_penalty + (c[j] > 0)·presence_penalty, with c[j]
    // the count of j in the text generated so far; then the bias.
    std::copy(logits.begin(), logits.end(), slot.work.begin());
    for (int32_t id : slot.touched) {
      const int32_t c = slot.counts[static_cast<size_t>(id)];
      slot.work[static_cast<size_t>(id)] -= c * p.frequency_penalty + p.presence_penalty;
    }
    for (const auto& [id, bias] : p.logit_bias)
      if (id >= 0 && id < decoder_.n_vocab()) slot.work[static_cast<size_t>(id)] += bias;
    use = slot.work;
  }
  TokenInfo info;
  info.id = slot.sampler->sample(use);
  if (tokenizer_.is_eog(info.id)) {
    finish(slot, FinishReason::Stop);
    return;
  }
  if (p.top_logprobs >= 0) fill_logprobs(info, use, p.top_logprobs);
  slot.sampler->accept(info.id);
  if (slot.counts[static_cast<size_t>(info.id)]++ == 0) slot.touched.push_back(info.id);
  ++slot.result.completion_tokens;
  slot.job->generated_.fetch_add(1);
  metrics_.generated_tokens.fetch_add(1);
  slot.job->emit(slot.stop->push(slot.detok->push(info.id)), p.top_logprobs >= 0 ? &info : nullptr);
  if (slot.stop->matched()) {
    finish(slot, FinishReason::Stop);
  } else if (p.max_tokens > 0 && slot.result.completion_tokens >= p.max_tokens) {
    finish(slot, FinishReason::Length);
  } else if (decoder_.n_past(slot.index) >= decoder_.n_ctx()) {
    finish(slot, FinishReason::Length);  // no room to feed the token: the context is full
  } else {
    slot.next = info.id;
    slot.state = Slot::State::Decode;
  }
}

void Scheduler::finish(Slot& slot, FinishReason reason, const std::string& error) {
  if (reason == FinishReason::Stop || reason == FinishReason::Length) {
    // The bytes of an unfinished character, then any tail held for a stop sequence.
    std::string rest = slot.stop->push(slot.detok->finish());
    rest += slot.stop->flush();
    slot.job->emit(std::move(rest), nullptr);
  }
  if (reason == FinishReason::Cancelled) metrics_.completions_cancelled.fetch_add(1);
  if (reason == FinishReason::Error)
    std::fprintf(stderr, "toy serve: generation failed: %s\n", printable(error).c_str());
  slot.result.finish = reason;
  slot.result.error = error;
  slot.job->finish(slot.result);
  {
    std::lock_guard lock(mutex_);
    std::erase(running_, slot.job);
  }
  slot.job.reset();
  slot.state = Slot::State::Idle;
  metrics_.requests_processing.fetch_sub(1);
  metrics_.completions_total.fetch_add(1);
}

}  // namespace toy::server
