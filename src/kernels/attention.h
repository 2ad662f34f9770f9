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

#include "core/dtype.h"
#include "kernels/compute.h"

namespace toy {

// Rows of keys or values as stored in a KV cache: row j (position j) holds
// n_head_kv*head_dim values of `type` — F32, F16, or Q8_0 when head_dim is a
// multiple of 32 (a head is then whole blocks). Heads are widened to F32 one at a
// time as they are read, so a 16-bit or 8-bit cache is never copied whole.
struct KvRows {
  const void* data = nullptr;
  DType type = DType::F32;
  size_t row_bytes = 0;  // bytes between consecutive positions
};

// Whether attention_forward can read rows of `type` directly for this head size.
bool attention_reads_directly(DType type, int64_t head_dim);

// The first key visible to a query at position pos: keys [first, pos] are visible
// (all of them without a sliding window, the last `window` ones with it).
int64_t first_visible_key(int64_t pos, int64_t window);

// Elements [offset, offset + n) of cache row j as floats: in place for F32 rows,
// else widened (F16, BF16) or dequantized (whole blocks) into tmp (n floats).
const float* cached_head(const cpu::Backend& cpu, const KvRows& rows, int64_t j, int64_t offset,
                         int64_t n, float* tmp);

// The largest head_dim attention_forward supports (its per-thread head buffers).
inline constexpr int64_t kMaxAttentionHeadDim = 1024;

struct AttentionParams {
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;    // usually 1/sqrt(head_dim)
  float softcap = 0.0f;  // 0: off
  int64_t window = 0;    // 0: full causal attention
};

// Floats of scratch attention_forward needs: a (n_head/n_head_kv, n_kv) score block per thread.
int64_t attention_scratch_floats(int n_threads, int64_t n_kv, const AttentionParams& p);

// out: (T, n_head*head_dim); q: (T, n_head*head_dim);
// k, v: (n_kv, n_head_kv*head_dim) for positions 0..n_kv-1 (n_kv >= pos0 + T);
// (attention_reads_directly(type, head_dim) must hold for typed rows);
// scores: attention_scratch_floats(cx.size(), n_kv, p) floats of scratch.
// Splits (position, KV head) pairs over the threads; the query heads sharing a KV head
// are done together so each cached row is read (and widened) once per position.
void attention_forward(float* out, const float* q, const KvRows& k, const KvRows& v, int64_t T,
                       int64_t pos0, int64_t n_kv, const AttentionParams& p, float* scores,
                       const Compute& cx);
// The same over F32 rows (n_head_kv*head_dim floats each).
void attention_forward(float* out, const float* q, const float* k, const float* v, int64_t T,
                       int64_t pos0, int64_t n_kv, const AttentionParams& p, float* scores,
                       const Compute& cx);

// Double-precision, single-threaded reference (for tests).
void attention_reference(float* out, const float* q, const float* k, const float* v, int64_t T,
                         int64_t pos0, int64_t n_kv, const AttentionParams& p);

}  // namespace toy
