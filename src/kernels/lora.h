// The low-rank adapter term of a weight product and its backward (Hu et al. 2021,
// "LoRA", eq. 3): for x (T, n_in), A (r, n_in) and B (n_out, r), both row-major
// (GGUF ne = [n_in, r] and [r, n_out]),
//
//   forward:   y  += s · (x·Aᵀ)·Bᵀ                 u = x·Aᵀ is (T, r)
//   backward:  dB += s · dyᵀ·u                      (n_out, r)
//              du  = s · dy·B                        (T, r)
//              dA += duᵀ·x                           (r, n_in)
//              dx += du·A                            (T, n_in)
//
// r is small, so each product is thin; u is recomputed in the backward rather than
// saved (T·r·n_in multiply-adds, a fraction of the base product's T·n_in·n_out).
// float runs the packed GEMM (kernels/linear_backward.h), double its scalar reference.
// The float forward of the model adds the term through matmul (model/linear.cpp: the
// inference kernel, allocation-free in decode); lora_forward is the double forward and
// the float backward's reference in the tests.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/compute.h"

namespace toy {

// LoRA dropout: out (T, n_in) = x ∘ mask / (1 − p) where mask(t, i) = 0 with probability p,
// a hash of (stream, term, row0 + t, i): the same mask whenever it is asked for again.
template <typename Real>
void lora_dropout(Real* out, const Real* x, int64_t T, int64_t n_in, float p, uint64_t stream,
                  uint32_t term, int64_t row0);
// dx (T, n_in) += g ∘ mask / (1 − p) with the mask of the same arguments.
template <typename Real>
void lora_dropout_backward(Real* dx, const Real* g, int64_t T, int64_t n_in, float p,
                           uint64_t stream, uint32_t term, int64_t row0);

template <typename Real>
void lora_forward(Real* y, const Real* x, const Real* a, const Real* b, Real scale, int64_t T,
                  int64_t n_in, int64_t r, int64_t n_out, const Compute& cx,
                  std::vector<Real>& scratch);

// da, db: null for an adapter that is applied but not trained; dx: null when the input
// needs no gradient.
template <typename Real>
void lora_backward(Real* dx, Real* da, Real* db, const Real* dy, const Real* x, const Real* a,
                   const Real* b, Real scale, int64_t T, int64_t n_in, int64_t r, int64_t n_out,
                   const Compute& cx, std::vector<Real>& scratch);

}  // namespace toy
