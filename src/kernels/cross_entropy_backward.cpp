#include "kernels/cross_entropy_backward.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace toy {
namespace {

void check_target(int32_t target, int64_t row, int64_t n_vocab) {
  if (target >= n_vocab)
    fail("target token ", target, " at row ", row, " is outside the vocabulary [0, ", n_vocab, ")");
}

// log Σ exp(row) computed stably in double.
template <typename Real>
double log_sum_exp(const Real* row, int64_t n, Real* max_out) {
  Real max_value = row[0];
  for (int64_t i = 1; i < n; ++i) max_value = std::max(max_value, row[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(row[i] - max_value));
  *max_out = max_value;
  return double(max_value) + std::log(sum);
}

}  // namespace

template <typename Real>
CrossEntropyResult cross_entropy_forward(const Real* logits, const int32_t* targets, int64_t rows,
                                         int64_t n_vocab) {
  CrossEntropyResult result;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] < 0) continue;
    check_target(targets[r], r, n_vocab);
    const Real* row = logits + r * n_vocab;
    Real max_value;
    result.loss_sum += log_sum_exp(row, n_vocab, &max_value) - double(row[targets[r]]);
    ++result.counted;
  }
  return result;
}

template <typename Real>
CrossEntropyResult cross_entropy_forward_backward(Real* dlogits, const Real* logits,
                                                  const int32_t* targets, int64_t rows,
                                                  int64_t n_vocab, double grad_scale,
                                                  const Compute& cx) {
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] >= 0) check_target(targets[r], r, n_vocab);
  // Per-row losses summed afterwards in row order: the same total for any thread count.
  std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
  cx.parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          Real* drow = dlogits + r * n_vocab;
          if (targets[r] < 0) {
            std::fill(drow, drow + n_vocab, Real(0));
            continue;
          }
          const Real* row = logits + r * n_vocab;
          Real max_value;
          const double lse = log_sum_exp(row, n_vocab, &max_value);
          row_loss[r] = lse - double(row[targets[r]]);
          for (int64_t i = 0; i < n_vocab; ++i)
            drow[i] = Real(std::exp(double(row[i]) - lse) * grad_scale);
          drow[targets[r]] -= Real(grad_scale);
        }
      },
      16);
  CrossEntropyResult result;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] < 0) continue;
    result.loss_sum += row_loss[r];
    ++result.counted;
  }
  return result;
}

template CrossEntropyResult cross_entropy_forward<float>(const float*, const int32_t*, int64_t,
                                                         int64_t);
template CrossEntropyResult cross_entropy_forward<double>(const double*, const int32_t*, int64_t,
                                                          int64_t);
template CrossEntropyResult cross_entropy_forward_backward<float>(float*, const float*,
                                                                  const int32_t*, int64_t, int64_t,
                                                                  double, const Compute&);
template CrossEntropyResult cross_entropy_forward_backward<double>(double*, const double*,
                                                                   const int32_t*, int64_t, int64_t,
                                                                   double, const Compute&);

}  // namespace toy
