// Backward of the gated delta-net (kernels/gated_delta_net.h) for training, from a
// zero start state (each training sequence starts empty). It runs through the
// per-token recurrence (correctness first): the forward is recomputed per head,
// keeping every state S_t (n_tok + 1 matrices of d_k × d_v), then the tokens are
// walked backwards. With S' = diag(a)·S_{t−1}, p = S'ᵀk̂, r = v − p, δ = β·r:
//
//   dq̂ = scale·S_t·do                   dS += scale·q̂·doᵀ
//   dk̂ += dS·δ                          dδ = dSᵀk̂
//   dβ = dδ·r,  dv = β·dδ,  dp = −β·dδ
//   dS' = dS + k̂·dpᵀ,  dk̂ += S'·dp
//   dS_{t−1} = diag(a)·dS',  dg_i = a_i·Σ_j dS'[i][j]·S_{t−1}[i][j]  (summed over i
//                                                            for a per-head gate)
// and the L2 normalisation's backward takes dq̂, dk̂ to dq, dk.
#pragma once

#include "kernels/gated_delta_net.h"

namespace toy {

// Gradients are accumulated (+=): dq, dk, dv at the same offsets and row stride as
// q, k, v (they may be one buffer, like q, k and v); dg (N, gate_width);
// dbeta (N, n_v_head) in the sigmoid's output. Heads are spread over the pool
// (key heads shared by several value heads are handled by one thread).
template <typename Real>
void gdn_backward(Real* dq, Real* dk, Real* dv, Real* dg, Real* dbeta, const Real* dout,
                  const Real* q, const Real* k, const Real* v, const Real* g, const Real* beta,
                  const GdnDims& d, const Compute& cx);

}  // namespace toy
