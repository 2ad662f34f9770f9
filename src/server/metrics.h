// Server counters for GET /metrics (Prometheus text format 0.0.4), updated by
// the HTTP threads and the scheduler without locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace toy::server {

struct Metrics {
  std::atomic<uint64_t> requests_total{0};   // HTTP requests answered
  std::atomic<uint64_t> requests_failed{0};  // ... with a status >= 400
  std::atomic<uint64_t> completions_total{0};
  std::atomic<uint64_t> completions_cancelled{0};  // client gone before the end
  std::atomic<uint64_t> prompt_tokens{0};          // prompt tokens run through the model
  std::atomic<uint64_t> prompt_tokens_cached{0};   // prompt tokens reused from a slot's cache
  std::atomic<uint64_t> generated_tokens{0};
  std::atomic<uint64_t> prompt_microseconds{0};  // time spent in prefill
  std::atomic<uint64_t> decode_microseconds{0};  // time spent in decode steps
  std::atomic<uint64_t> decode_steps{0};
  std::atomic<uint64_t> decode_rows{0};         // sum over steps of the sequences in the step
  std::atomic<int64_t> requests_queued{0};      // waiting for a slot
  std::atomic<int64_t> requests_processing{0};  // holding a slot
  int64_t slots = 0;

  std::string prometheus() const;
};

}  // namespace toy::server
