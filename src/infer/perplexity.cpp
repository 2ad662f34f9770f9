#include "infer/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace toy {

double token_nll(const float* logits, int64_t n_vocab, int32_t target) {
  const float max_logit = *std::max_element(logits, logits + n_vocab);
  double sum = 0.0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - max_logit);
  return -(static_cast<double>(logits[target] - max_logit) - std::log(sum));
}

PerplexityResult perplexity(Session& session, std::span<const int32_t> tokens,
                            const PerplexityOptions& options,
                            const std::function<void(int64_t, double)>& on_chunk) {
  const int64_t n_ctx = options.n_ctx;
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_ctx < 4) fail("perplexity needs a context of at least 4 tokens, got ", n_ctx);
  if (n_tokens < 2 * n_ctx)
    fail("the text tokenizes to ", n_tokens, " tokens; perplexity with a context of ", n_ctx,
         " needs at least ", 2 * n_ctx, " (2 chunks; lower -c or give more text)");
  if (session.n_ctx() < n_ctx)
    fail("the session's context (", session.n_ctx(), ") is shorter than a chunk (", n_ctx, ")");
  const int64_t n_vocab = session.n_vocab();
  const int64_t max_chunks = n_tokens / n_ctx;
  const int64_t n_chunks =
      options.chunks < 0 ? max_chunks : std::min<int64_t>(options.chunks, max_chunks);
  const int64_t first = n_ctx / 2;
  const int64_t batch = std::max<int64_t>(1, options.n_batch);

  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  // Logits of one batch of scored positions: (batch, n_vocab), not the whole chunk's.
  std::vector<float> logits(static_cast<size_t>(std::min(batch, n_ctx - first) * n_vocab));
  PerplexityResult result;
  double nll = 0, nll2 = 0;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::copy_n(tokens.begin() + c * n_ctx, n_ctx, chunk.begin());
    if (options.bos >= 0) chunk[0] = options.bos;
    session.reset();
    // The first half only fills the cache (its logits are not scored).
    for (int64_t p = 0; p < first; p += batch)
      session.prefill(std::span<const int32_t>(chunk).subspan(p, std::min(batch, first - p)));
    for (int64_t p = first; p < n_ctx; p += batch) {
      const int64_t n = std::min(batch, n_ctx - p);
      session.prefill_all(std::span<const int32_t>(chunk).subspan(p, n), logits.data());
      // Position i predicts token i+1; the last position of the chunk has nothing to predict.
      for (int64_t i = p; i < std::min(p + n, n_ctx - 1); ++i) {
        const double v = token_nll(&logits[(i - p) * n_vocab], n_vocab, chunk[i + 1]);
        nll += v;
        nll2 += v * v;
        ++result.n_scored;
      }
    }
    ++result.n_chunks;
    if (on_chunk) on_chunk(c + 1, std::exp(nll / result.n_scored));
  }
  const double count = static_cast<double>(result.n_scored);
  const double mean = nll / count;
  result.ppl = std::exp(mean);
  const double var = nll2 / count - mean * mean;
  if (var > 0 && result.n_scored > 1)
    result.uncertainty = std::sqrt(var / (count - 1)) * result.ppl;
  return result;
}

}  // namespace toy
