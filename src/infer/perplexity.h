// Perplexity of a model on a token sequence, with llama-perplexity's definition
// (llama.cpp tools/perplexity, the default mode), so the numbers compare:
//
//   - the text is tokenized once (BOS as the vocabulary says) by the caller;
//   - it is cut into n_chunk = min(chunks, tokens / n_ctx) chunks of n_ctx tokens, each run
//     from an empty cache, with its first token replaced by BOS when the vocabulary adds one;
//   - only the second half is scored: the logits at positions n_ctx/2 .. n_ctx-2 predict the
//     next token, n_ctx - n_ctx/2 - 1 tokens per chunk, so every scored token has at least
//     n_ctx/2 tokens of context;
//   - PPL = exp(mean NLL), its uncertainty exp(mean)·sqrt((E[nll²] - E[nll]²)/(count - 1)).
// llama.cpp refuses a text shorter than 2·n_ctx tokens; so does this.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "infer/session.h"

namespace toy {

struct PerplexityOptions {
  int64_t n_ctx = 512;    // chunk length; the session's context must hold it
  int64_t chunks = -1;    // at most this many chunks; -1: all that fit
  int32_t bos = -1;       // first token of every chunk; -1: keep the text's token
  int64_t n_batch = 512;  // positions per forward call while scoring
};

struct PerplexityResult {
  int64_t n_chunks = 0;
  int64_t n_scored = 0;    // tokens scored
  double ppl = 0;          // exp(mean NLL)
  double uncertainty = 0;  // llama.cpp's "+/-" (0 when it cannot be estimated)
};

// Runs the chunks through `session` (reset before each). After each chunk calls
// on_chunk(chunk index from 1, running PPL). Throws toy::Error when the tokens do not make
// two chunks or the session's context is shorter than n_ctx.
PerplexityResult perplexity(Session& session, std::span<const int32_t> tokens,
                            const PerplexityOptions& options,
                            const std::function<void(int64_t, double)>& on_chunk = nullptr);

// -log softmax(logits)[target] over n_vocab logits, in llama.cpp's arithmetic (float
// exponentials of logit - max summed in double).
double token_nll(const float* logits, int64_t n_vocab, int32_t target);

}  // namespace toy
