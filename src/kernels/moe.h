// Mixture-of-experts routing: which k experts each position uses, with what weight.
//   p = softmax(router_logits);  experts = top-k of p;  weights = p[experts]
//   (rescaled to sum 1 when `renormalize`: Mixtral, Qwen3-MoE; not OLMoE, Qwen2-MoE).
#pragma once

#include <cstdint>

namespace toy {

// ids, weights: (T, k) — experts in descending probability, ties to the lower id.
// logits: (T, n_expert), overwritten with the probabilities.
void moe_route(int32_t* ids, float* weights, float* logits, int64_t T, int64_t n_expert, int64_t k,
               bool renormalize);

}  // namespace toy
