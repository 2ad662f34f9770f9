// Mixture-of-experts routing: which k experts each position uses, with what weight.
//   p = softmax(router_logits);  experts = top-k of p;  weights = p[experts]
//   (rescaled to sum 1 when `renormalize`: Mixtral, Qwen3-MoE; not OLMoE, Qwen2-MoE).
#pragma once

#include <cstdint>

namespace toy {

// ids, weights: (T, k) — experts in descending probability, ties to the lower id.
// logits: (T, n_expert), overwritten with the probabilities (what the backward reads).
// float is what inference and training run; double is the scalar reference of the
// gradient checks (the same selection, the softmax in double).
template <typename Real>
void moe_route(int32_t* ids, Real* weights, Real* logits, int64_t T, int64_t n_expert, int64_t k,
               bool renormalize);

// The backward of moe_route with the selection held fixed (top-k is piecewise constant,
// so its own derivative is zero almost everywhere). Accumulates d_logits (T, n_expert) +=
// ∂L/∂logits from d_weights (T, k) = ∂L/∂weights, the saved probabilities probs
// (T, n_expert) and ids (T, k):
//   renormalized: w_j = p_j / S, S = Σ_k p_k  →  ∂L/∂p_j = (dw_j − Σ_k dw_k·w_k) / S
//   softmax:      ∂L/∂z_e = p_e · (∂L/∂p_e − Σ_f p_f·∂L/∂p_f)   (∂L/∂p_e = 0 off the top-k)
template <typename Real>
void moe_route_backward(Real* d_logits, const Real* d_weights, const Real* probs,
                        const int32_t* ids, int64_t T, int64_t n_expert, int64_t k,
                        bool renormalize);

}  // namespace toy
