// Causal self-attention over B sequences of T positions for training, with
// grouped-query attention (query head h reads KV head h / (n_head/n_head_kv)).
// The forward saves the softmax probabilities; the backward follows
//   dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),  dQ = scale·dS·K,  dK = scale·dSᵀ·Q,  dV = Pᵀ·dO.
// Work is split over (sequence, KV head) pairs, so no two threads write the same dK/dV rows.
//
// Packed rows (several examples sharing one sequence of T positions) use a
// block-causal mask: with `segment` (B·T, the example of each position), key j
// is visible to query i only if j <= i and segment[j] == segment[i], so no
// example attends to another. nullptr is the plain causal mask. A query always
// sees itself, so every softmax row has at least one term.
//
// Gemma 2: with `window` w > 0 key j is visible to query i only if also i − j < w
// (sliding-window layers); with `softcap` c > 0 the scaled scores pass through
// y = c·tanh(s/c) before the softmax, whose derivative 1 − (y/c)² the backward
// applies to dY after recomputing the scores (the forward saves P only).
#pragma once

#include <cstdint>

#include "kernels/compute.h"
#include "kernels/linear_backward.h"

namespace toy {

struct AttentionDims {
  int64_t n_seq;      // B
  int64_t n_pos;      // T
  int64_t n_head;     // query heads
  int64_t n_head_kv;  // key/value heads (divides n_head)
  int64_t head_dim;
  double scale;        // usually 1/sqrt(head_dim)
  double softcap = 0;  // 0: off; else scores y = softcap·tanh(scale·q·k / softcap)
  int64_t window = 0;  // 0: full causal; else key j visible to query i iff i − j < window
  // What the score and value products round their inputs to: BF16 under mixed precision
  // (as autocast runs attention's matrix products), the softmax itself stays F32.
  GemmInputs inputs = GemmInputs::F32;
};

// out, q: (B·T, n_head·head_dim); k, v: (B·T, n_head_kv·head_dim);
// probs: (B, n_head, T, T) saved for the backward (entries of masked keys are 0);
// segment: (B·T) or nullptr.
template <typename Real>
void attention_forward_train(Real* out, Real* probs, const Real* q, const Real* k, const Real* v,
                             const AttentionDims& dims, const Compute& cx,
                             const int32_t* segment = nullptr);

// dq, dk, dv (shapes of q, k, v) += gradients for dout (shape of out); `segment` is the
// forward's.
template <typename Real>
void attention_backward(Real* dq, Real* dk, Real* dv, const Real* dout, const Real* q,
                        const Real* k, const Real* v, const Real* probs, const AttentionDims& dims,
                        const Compute& cx, const int32_t* segment = nullptr);

}  // namespace toy
