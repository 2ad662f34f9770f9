// Causal multi-head attention over a KV history, for all heads and all query
// positions of a batch in one call (heads are looped inside; the q/k/v/o
// projections around it are batched matmuls done by the caller).
//
//   s_j = scale · q·k_j            for keys j visible to the query
//   s_j = cap · tanh(s_j / cap)    when softcap > 0 (Gemma 2)
//   out = Σ_j softmax(s)_j · v_j
//
// Query t sits at position pos0 + t; key j at position j. Key j is visible when
// j <= pos0 + t and, with a sliding window w > 0, when (pos0 + t) − j < w.
// GQA: query head h reads KV head h / (n_head / n_head_kv).
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace toy {

struct AttentionParams {
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;    // usually 1/sqrt(head_dim)
  float softcap = 0.0f;  // 0: off
  int64_t window = 0;    // 0: full causal attention
};

// out: (T, n_head*head_dim); q: (T, n_head*head_dim);
// k, v: (n_kv, n_head_kv*head_dim) for positions 0..n_kv-1 (n_kv >= pos0 + T);
// scores: pool.size() * n_kv floats of scratch. Splits (position, head) pairs over the pool.
void attention_forward(float* out, const float* q, const float* k, const float* v, int64_t T,
                       int64_t pos0, int64_t n_kv, const AttentionParams& p, float* scores,
                       ThreadPool& pool);

// Double-precision, single-threaded reference (for tests).
void attention_reference(float* out, const float* q, const float* k, const float* v, int64_t T,
                         int64_t pos0, int64_t n_kv, const AttentionParams& p);

}  // namespace toy
