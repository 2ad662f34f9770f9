// AdamW with decoupled weight decay and bias correction (Loshchilov & Hutter,
// "Decoupled Weight Decay Regularization", 2019), the warm-up + cosine
// learning-rate schedule, and global gradient-norm clipping — the optimizer
// of nanoGPT / llm.c.
#pragma once

#include <cstdint>

namespace toy::train {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;  // applied only where the caller says (2-D weights)
};

// One AdamW update of n parameters at (1-based) step `step` with learning rate `lr`:
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//   w −= lr · ( m/(1−β1^step) / (sqrt(v/(1−β2^step)) + eps) + wd·w )
// `decay` selects whether weight decay applies to this tensor.
template <typename Real>
void adamw_update(Real* w, const Real* g, Real* m, Real* v, int64_t n, const AdamWConfig& config,
                  double lr, int64_t step, bool decay);

// Linear warm-up from 0 over `warmup` steps, then cosine decay from `lr` to
// `min_lr` at `total` steps (constant `lr` after warm-up when `cosine` is false).
// `step` counts from 0.
struct LrSchedule {
  double lr = 1e-3;
  double min_lr = 1e-4;
  int64_t warmup = 0;
  int64_t total = 1;
  bool cosine = false;

  double at(int64_t step) const;
};

// Global L2 norm of the n gradients at g (accumulated in double).
template <typename Real>
double squared_norm(const Real* g, int64_t n);

// Scales g by max_norm / norm when norm > max_norm (max_norm <= 0: no clipping).
// Returns the scale applied (1 when unclipped).
template <typename Real>
double clip_by_global_norm(Real* g, int64_t n, double norm, double max_norm);

}  // namespace toy::train
