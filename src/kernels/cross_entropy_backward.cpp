#include "kernels/cross_entropy_backward.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace toy {
namespace {

void check_target(int32_t target, int64_t row, int64_t n_vocab) {
  if (target >= n_vocab)
    fail("target token ", target, " at row ", row, " is outside the vocabulary [0, ", n_vocab, ")");
}

// The row's maximum; exp(row − max) into `e` (the backend's vector exp for float,
// std::exp for double); returns Σ e in double. log Σ exp(row) = max + log(returned sum).
// The maximum and the sum run in kLanes independent lanes, combined in a fixed order, so
// the compiler vectorizes them (a single running sum in double would be one add per cycle
// over the whole vocabulary) and a row's result still does not depend on the threads.
template <typename Real>
double shifted_exp_sum(const cpu::Backend& cpu, Real* e, const Real* row, int64_t n,
                       Real* max_out) {
  constexpr int64_t kLanes = 8;
  const int64_t whole = n / kLanes * kLanes;
  Real lane_max[kLanes];
  std::fill(lane_max, lane_max + kLanes, row[0]);
  for (int64_t i = 0; i < whole; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lane_max[j] = std::max(lane_max[j], row[i + j]);
  Real max_value = row[0];
  for (int64_t j = 0; j < kLanes; ++j) max_value = std::max(max_value, lane_max[j]);
  for (int64_t i = whole; i < n; ++i) max_value = std::max(max_value, row[i]);
  if constexpr (std::is_same_v<Real, float>) {
    cpu.exp_shifted(e, row, max_value, n);
  } else {
    for (int64_t i = 0; i < n; ++i) e[i] = std::exp(row[i] - max_value);
  }
  double lane_sum[kLanes] = {};
  for (int64_t i = 0; i < whole; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lane_sum[j] += double(e[i + j]);
  double sum = 0.0;
  for (int64_t j = 0; j < kLanes; ++j) sum += lane_sum[j];
  for (int64_t i = whole; i < n; ++i) sum += double(e[i]);
  *max_out = max_value;
  return sum;
}

// Per-row losses summed afterwards in row order: the same total for any thread count.
CrossEntropyResult sum_rows(const std::vector<double>& row_loss, const int32_t* targets,
                            int64_t rows) {
  CrossEntropyResult result;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] < 0) continue;
    result.loss_sum += row_loss[static_cast<size_t>(r)];
    ++result.counted;
  }
  return result;
}

}  // namespace

template <typename Real>
CrossEntropyResult cross_entropy_forward(const Real* logits, const int32_t* targets, int64_t rows,
                                         int64_t n_vocab, const Compute& cx,
                                         SavedSoftmax<Real> saved) {
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] >= 0) check_target(targets[r], r, n_vocab);
  std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
  cx.parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        std::vector<Real> scratch(saved.exp ? 0 : static_cast<size_t>(n_vocab));
        for (int64_t r = begin; r < end; ++r) {
          if (targets[r] < 0) continue;
          const Real* row = logits + r * n_vocab;
          Real* e = saved.exp ? saved.exp + r * n_vocab : scratch.data();
          Real max_value;
          const double sum = shifted_exp_sum(cx.cpu, e, row, n_vocab, &max_value);
          if (saved.sums) saved.sums[r] = sum;
          row_loss[r] = double(max_value) + std::log(sum) - double(row[targets[r]]);
        }
      },
      16);
  return sum_rows(row_loss, targets, rows);
}

template <typename Real>
void cross_entropy_backward_saved(SavedSoftmax<Real> saved, const int32_t* targets, int64_t rows,
                                  int64_t n_vocab, double grad_scale, const Compute& cx) {
  cx.parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          Real* drow = saved.exp + r * n_vocab;
          if (targets[r] < 0) {
            std::fill(drow, drow + n_vocab, Real(0));
            continue;
          }
          // softmax = exp(row − max) / sum, as in cross_entropy_forward_backward
          const Real scale = Real(grad_scale / saved.sums[r]);
          for (int64_t i = 0; i < n_vocab; ++i) drow[i] *= scale;
          drow[targets[r]] -= Real(grad_scale);
        }
      },
      16);
}

template <typename Real>
CrossEntropyResult cross_entropy_forward_backward(Real* dlogits, const Real* logits,
                                                  const int32_t* targets, int64_t rows,
                                                  int64_t n_vocab, double grad_scale,
                                                  const Compute& cx) {
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] >= 0) check_target(targets[r], r, n_vocab);
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
          const double sum = shifted_exp_sum(cx.cpu, drow, row, n_vocab, &max_value);
          row_loss[r] = double(max_value) + std::log(sum) - double(row[targets[r]]);
          // softmax = exp(row − max) / sum
          const Real scale = Real(grad_scale / sum);
          for (int64_t i = 0; i < n_vocab; ++i) drow[i] *= scale;
          drow[targets[r]] -= Real(grad_scale);
        }
      },
      16);
  return sum_rows(row_loss, targets, rows);
}

template CrossEntropyResult cross_entropy_forward<float>(const float*, const int32_t*, int64_t,
                                                         int64_t, const Compute&,
                                                         SavedSoftmax<float>);
template CrossEntropyResult cross_entropy_forward<double>(const double*, const int32_t*, int64_t,
                                                          int64_t, const Compute&,
                                                          SavedSoftmax<double>);
template void cross_entropy_backward_saved<float>(SavedSoftmax<float>, const int32_t*, int64_t,
                                                  int64_t, double, const Compute&);
template void cross_entropy_backward_saved<double>(SavedSoftmax<double>, const int32_t*, int64_t,
                                                   int64_t, double, const Compute&);
template CrossEntropyResult cross_entropy_forward_backward<float>(float*, const float*,
                                                                  const int32_t*, int64_t, int64_t,
                                                                  double, const Compute&);
template CrossEntropyResult cross_entropy_forward_backward<double>(double*, const double*,
                                                                   const int32_t*, int64_t, int64_t,
                                                                   double, const Compute&);

}  // namespace toy
