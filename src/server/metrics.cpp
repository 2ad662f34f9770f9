#include "server/metrics.h"

#include <sstream>

namespace toy::server {
namespace {

void metric(std::ostringstream& out, const char* name, const char* type, const char* help,
            double value) {
  out << "# HELP toy_" << name << ' ' << help << "\n# TYPE toy_" << name << ' ' << type << "\ntoy_"
      << name << ' ' << value << '\n';
}

double per_second(uint64_t count, uint64_t microseconds) {
  return microseconds ? count / (microseconds * 1e-6) : 0.0;
}

}  // namespace

std::string Metrics::prometheus() const {
  std::ostringstream out;
  out.precision(10);
  metric(out, "requests_total", "counter", "HTTP requests answered.", requests_total.load());
  metric(out, "requests_failed_total", "counter", "HTTP requests answered with a status >= 400.",
         requests_failed.load());
  metric(out, "completions_total", "counter", "Completions (chat and text) finished.",
         completions_total.load());
  metric(out, "completions_cancelled_total", "counter",
         "Completions stopped because the client disconnected.", completions_cancelled.load());
  metric(out, "prompt_tokens_total", "counter", "Prompt tokens run through the model.",
         prompt_tokens.load());
  metric(out, "prompt_tokens_cached_total", "counter",
         "Prompt tokens reused from a slot's KV cache.", prompt_tokens_cached.load());
  metric(out, "tokens_predicted_total", "counter", "Tokens generated.", generated_tokens.load());
  metric(out, "prompt_seconds_total", "counter", "Time spent in prompt processing.",
         prompt_microseconds.load() * 1e-6);
  metric(out, "decode_seconds_total", "counter", "Time spent in decode steps.",
         decode_microseconds.load() * 1e-6);
  metric(out, "prompt_tokens_seconds", "gauge", "Prompt tokens per second of prompt processing.",
         per_second(prompt_tokens.load(), prompt_microseconds.load()));
  metric(out, "predicted_tokens_seconds", "gauge",
         "Generated tokens per second of decoding (all sequences together).",
         per_second(generated_tokens.load(), decode_microseconds.load()));
  const uint64_t steps = decode_steps.load();
  metric(out, "decode_batch_size_mean", "gauge", "Mean sequences per decode step.",
         steps ? static_cast<double>(decode_rows.load()) / steps : 0.0);
  metric(out, "requests_processing", "gauge", "Requests holding a slot.",
         requests_processing.load());
  metric(out, "requests_deferred", "gauge", "Requests waiting for a free slot (queue length).",
         requests_queued.load());
  metric(out, "slots", "gauge", "Sequences decoded together at most (--parallel).",
         static_cast<double>(slots));
  return out.str();
}

}  // namespace toy::server
