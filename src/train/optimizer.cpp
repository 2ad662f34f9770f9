#include "train/optimizer.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace toy::train {

template <typename Real>
void adamw_update(Real* w, const Real* g, Real* m, Real* v, int64_t n, const AdamWConfig& config,
                  double lr, int64_t step, bool decay) {
  TOY_CHECK(step >= 1, "AdamW steps count from 1, got ", step);
  const Real beta1 = Real(config.beta1), beta2 = Real(config.beta2);
  // Bias corrections folded into the step size and eps (same math, fewer divisions):
  //   m̂/(sqrt(v̂)+eps) = (m/c1) / (sqrt(v)/sqrt(c2) + eps)
  const double c1 = 1.0 - std::pow(config.beta1, double(step));
  const double c2 = 1.0 - std::pow(config.beta2, double(step));
  const Real inv_c1 = Real(1.0 / c1), inv_sqrt_c2 = Real(1.0 / std::sqrt(c2));
  const Real eps = Real(config.eps), step_size = Real(lr);
  const Real wd = decay ? Real(config.weight_decay) : Real(0);
  for (int64_t i = 0; i < n; ++i) {
    const Real gi = g[i];
    m[i] = beta1 * m[i] + (Real(1) - beta1) * gi;
    v[i] = beta2 * v[i] + (Real(1) - beta2) * gi * gi;
    const Real m_hat = m[i] * inv_c1;
    const Real v_hat_sqrt = std::sqrt(v[i]) * inv_sqrt_c2;
    w[i] -= step_size * (m_hat / (v_hat_sqrt + eps) + wd * w[i]);
  }
}

double LrSchedule::at(int64_t step) const {
  if (warmup > 0 && step < warmup) return lr * double(step + 1) / double(warmup);
  if (!cosine) return lr;
  const int64_t decay_steps = std::max<int64_t>(1, total - warmup);
  const double progress = std::min(1.0, double(step - warmup) / double(decay_steps));
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

template <typename Real>
double squared_norm(const Real* g, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(g[i]) * double(g[i]);
  return sum;
}

template <typename Real>
double clip_by_global_norm(Real* g, int64_t n, double norm, double max_norm) {
  if (max_norm <= 0.0 || norm <= max_norm || !(norm > 0.0)) return 1.0;
  const double scale = max_norm / (norm + 1e-6);
  for (int64_t i = 0; i < n; ++i) g[i] = Real(double(g[i]) * scale);
  return scale;
}

template void adamw_update<float>(float*, const float*, float*, float*, int64_t, const AdamWConfig&,
                                  double, int64_t, bool);
template void adamw_update<double>(double*, const double*, double*, double*, int64_t,
                                   const AdamWConfig&, double, int64_t, bool);
template double squared_norm<float>(const float*, int64_t);
template double squared_norm<double>(const double*, int64_t);
template double clip_by_global_norm<float>(float*, int64_t, double, double);
template double clip_by_global_norm<double>(double*, int64_t, double, double);

}  // namespace toy::train
