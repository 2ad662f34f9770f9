// Logit softcapping for training (Gemma 2's final logits): y = c·tanh(x/c), which
// bounds |y| < c smoothly. Its derivative follows from the output alone,
//   dy/dx = 1 − tanh²(x/c) = 1 − (y/c)²,
// so the forward keeps only y (the logits the loss reads) and the backward
// needs no pre-cap copy. The float forward is softcap() in kernels/activations.h;
// attention's score softcap lives inside kernels/attention_backward.h.
#pragma once

#include <cstdint>

namespace toy {

// x (n) = c·tanh(x/c) in place (scalar reference of softcap(), any float type).
template <typename Real>
void softcap_reference(Real* x, int64_t n, double cap);

// d (n) holds dL/dy on entry and dL/dx on return; y (n) is the forward's output.
// In place rather than `+=`: the loss gradient it scales has no other reader.
template <typename Real>
void softcap_backward(Real* d, const Real* y, int64_t n, double cap);

}  // namespace toy
