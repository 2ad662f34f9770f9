// RMSNorm backward for training, and a scalar forward reference templated on
// the float type so gradient checks can run in double. Also used per head for
// Qwen3's q/k norm (rows = positions × heads, n = head_dim).
//   y = x · r · w,  r = 1/sqrt(mean(x²) + eps)
//   dx = r · (w·dy − x̂ · mean(w·dy·x̂)),  x̂ = x·r;   dw += Σ_rows dy·x̂
// The backward recomputes r from x (one pass over a row) instead of saving it,
// so the training forward is the inference kernel `rmsnorm_forward` unchanged.
#pragma once

#include <cstdint>

namespace toy {

// out, x: (rows, n); w: (n). Sums of squares in double, like rmsnorm_forward.
template <typename Real>
void rmsnorm_reference(Real* out, const Real* x, const Real* w, int64_t rows, int64_t n, float eps);

// dx (rows, n) += ..., dw (n) += ... (dw may be null).
template <typename Real>
void rmsnorm_backward(Real* dx, Real* dw, const Real* dout, const Real* x, const Real* w,
                      int64_t rows, int64_t n, float eps);

}  // namespace toy
