// RMSNorm forward for inference: y = x / sqrt(mean(x²) + eps) * w.
// (The training forward that saves 1/rms, and the backward, are in rmsnorm_backward.h.)
#pragma once

#include <cstdint>

namespace toy {

// out, x: (rows, n) row-major (out may alias x); w: (n), or null for no weight.
// The sum of squares is accumulated in double, as ggml does.
void rmsnorm_forward(float* out, const float* x, const float* w, int64_t rows, int64_t n,
                     float eps);

}  // namespace toy
