// Softmax cross-entropy over rows of logits with ignored labels (target < 0),
// the training loss. The gradient is (softmax − onehot) · grad_scale on counted
// rows and 0 on ignored rows; the caller picks grad_scale = 1/(counted rows ·
// accumulation steps) for a mean loss.
#pragma once

#include <cstdint>

#include "kernels/compute.h"

namespace toy {

struct CrossEntropyResult {
  double loss_sum = 0.0;  // Σ over counted rows of −log softmax(logits)[target]
  int64_t counted = 0;    // rows whose target is not ignored
};

// logits (rows, n_vocab); targets (rows), < 0 = ignored; targets ≥ n_vocab are an error.
// Rows split across the threads; exp through the backend's vector exp (float), sums in
// double, per-row losses added in row order (the same for any thread count).
// With `saved` (a training forward that its backward follows), each counted row's
// exp(logit − max) is written to saved.exp (rows, n_vocab) and its sum to saved.sums (rows),
// so cross_entropy_backward_saved needs no second pass of exponentials.
template <typename Real>
struct SavedSoftmax {
  Real* exp = nullptr;
  double* sums = nullptr;
};
template <typename Real>
CrossEntropyResult cross_entropy_forward(const Real* logits, const int32_t* targets, int64_t rows,
                                         int64_t n_vocab, const Compute& cx,
                                         SavedSoftmax<Real> saved = {});

// The gradient from what cross_entropy_forward saved, in place over saved.exp: the same
// bits cross_entropy_forward_backward writes.
template <typename Real>
void cross_entropy_backward_saved(SavedSoftmax<Real> saved, const int32_t* targets, int64_t rows,
                                  int64_t n_vocab, double grad_scale, const Compute& cx);

// Both at once: dlogits (rows, n_vocab) = (softmax − onehot)·grad_scale (overwritten).
template <typename Real>
CrossEntropyResult cross_entropy_forward_backward(Real* dlogits, const Real* logits,
                                                  const int32_t* targets, int64_t rows,
                                                  int64_t n_vocab, double grad_scale,
                                                  const Compute& cx);

}  // namespace toy
