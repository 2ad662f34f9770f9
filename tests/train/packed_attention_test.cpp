// The block-causal mask of packed rows (kernels/attention_backward.h with
// segment ids): gradients against double-precision finite differences, and a
// packed row computing exactly what its examples compute one by one.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "grad_check.h"
#include "kernels/attention_backward.h"
#include "kernels/compute.h"
#include "kernels/cpu/features.h"

namespace toy {
namespace {

using testing::expect_matches_finite_differences;
using testing::random_values;
using testing::weighted_sum;

TEST(PackedAttention, BlockCausalMaskMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const AttentionDims d{2, 7, 4, 2, 3, 1.0 / std::sqrt(3.0)};  // B=2, T=7, GQA 4 over 2
  // Row 0: three examples; row 1: one example, padding (-1), and a segment that recurs.
  const std::vector<int32_t> segment = {0, 0, 0, 1, 1, 2, 2, 0, 0, 0, 0, -1, 5, 0};
  const int64_t rows = d.n_seq * d.n_pos, qn = rows * d.n_head * d.head_dim,
                kvn = rows * d.n_head_kv * d.head_dim;
  std::vector<double> q = random_values(qn, 21), k = random_values(kvn, 22),
                      v = random_values(kvn, 23), r = random_values(qn, 24);
  std::vector<double> out(qn), probs(d.n_seq * d.n_head * d.n_pos * d.n_pos);
  auto loss = [&] {
    attention_forward_train(out.data(), probs.data(), q.data(), k.data(), v.data(), d, cx,
                            segment.data());
    return weighted_sum(r, out.data());
  };
  loss();
  // The mask: a probability is nonzero exactly where key j is visible to query i.
  for (int64_t b = 0; b < d.n_seq; ++b)
    for (int64_t h = 0; h < d.n_head; ++h)
      for (int64_t i = 0; i < d.n_pos; ++i) {
        double sum = 0.0;
        for (int64_t j = 0; j < d.n_pos; ++j) {
          const double p = probs[((b * d.n_head + h) * d.n_pos + i) * d.n_pos + j];
          const bool visible = j <= i && segment[b * d.n_pos + j] == segment[b * d.n_pos + i];
          EXPECT_EQ(p > 0.0, visible) << b << " " << h << " " << i << " " << j;
          sum += p;
        }
        EXPECT_NEAR(sum, 1.0, 1e-12);
      }
  std::vector<double> dq(qn, 0.0), dk(kvn, 0.0), dv(kvn, 0.0);
  attention_backward(dq.data(), dk.data(), dv.data(), r.data(), q.data(), k.data(), v.data(),
                     probs.data(), d, cx, segment.data());
  expect_matches_finite_differences(q, dq, loss, "packed attention dq");
  expect_matches_finite_differences(k, dk, loss, "packed attention dk");
  expect_matches_finite_differences(v, dv, loss, "packed attention dv");
}

// One row packing examples of 3, 4 and 2 positions (and 1 of padding) against each
// example as its own sequence: the same outputs and the same gradients, in double
// (to rounding) and in float (the training path).
template <typename Real>
void expect_packed_equals_separate(double tolerance) {
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const int64_t H = 4, KV = 2, D = 5, T = 10;
  const std::vector<int64_t> lengths = {3, 4, 2, 1};
  const std::vector<int32_t> segment = {0, 0, 0, 1, 1, 1, 1, 2, 2, -1};
  const double scale = 1.0 / std::sqrt(double(D));
  auto values = [](int64_t n, uint64_t seed) {
    const std::vector<double> x = random_values(n, seed);
    return std::vector<Real>(x.begin(), x.end());
  };
  const std::vector<Real> q = values(T * H * D, 31), k = values(T * KV * D, 32),
                          v = values(T * KV * D, 33), dout = values(T * H * D, 34);
  std::vector<Real> out(T * H * D), probs(H * T * T);
  std::vector<Real> dq(q.size(), 0), dk(k.size(), 0), dv(v.size(), 0);
  const AttentionDims packed{1, T, H, KV, D, scale};
  attention_forward_train(out.data(), probs.data(), q.data(), k.data(), v.data(), packed, cx,
                          segment.data());
  attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(),
                     probs.data(), packed, cx, segment.data());

  int64_t start = 0;
  for (const int64_t n : lengths) {
    const AttentionDims one{1, n, H, KV, D, scale};
    // Rows [start, start + n) of each tensor, as a sequence of its own.
    auto slice = [&](const std::vector<Real>& x, int64_t width) {
      return std::vector<Real>(x.begin() + start * width, x.begin() + (start + n) * width);
    };
    const std::vector<Real> qs = slice(q, H * D), ks = slice(k, KV * D), vs = slice(v, KV * D),
                            douts = slice(dout, H * D);
    std::vector<Real> outs(n * H * D), ps(H * n * n);
    std::vector<Real> dqs(qs.size(), 0), dks(ks.size(), 0), dvs(vs.size(), 0);
    attention_forward_train(outs.data(), ps.data(), qs.data(), ks.data(), vs.data(), one, cx);
    attention_backward(dqs.data(), dks.data(), dvs.data(), douts.data(), qs.data(), ks.data(),
                       vs.data(), ps.data(), one, cx);
    auto expect_near = [&](const std::vector<Real>& whole, const std::vector<Real>& part,
                           int64_t width, const char* what) {
      for (int64_t i = 0; i < n * width; ++i)
        EXPECT_NEAR(double(whole[start * width + i]), double(part[i]), tolerance)
            << what << " example at " << start << " element " << i;
    };
    expect_near(out, outs, H * D, "out");
    expect_near(dq, dqs, H * D, "dq");
    expect_near(dk, dks, KV * D, "dk");
    expect_near(dv, dvs, KV * D, "dv");
    start += n;
  }
}

TEST(PackedAttention, PackedRowEqualsItsExamplesOneByOneInDouble) {
  expect_packed_equals_separate<double>(1e-12);
}

TEST(PackedAttention, PackedRowEqualsItsExamplesOneByOneInFloat) {
  expect_packed_equals_separate<float>(2e-6);
}

// A sum of squared outputs as the loss (so dout depends on the output): the loss and every
// gradient of a packed row equal the sums over its examples run separately.
TEST(PackedAttention, LossAndGradientsOfAPackedRowAreThoseOfItsExamples) {
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const int64_t H = 2, KV = 1, D = 4, T = 6;
  const std::vector<int32_t> segment = {0, 0, 0, 1, 1, 1};
  const double scale = 0.5;
  std::vector<double> q = random_values(T * H * D, 41), k = random_values(T * KV * D, 42),
                      v = random_values(T * KV * D, 43);
  auto run = [&](int64_t first, int64_t n, const int32_t* seg, std::vector<double>& dq,
                 std::vector<double>& dk, std::vector<double>& dv) {
    const AttentionDims d{1, n, H, KV, D, scale};
    std::vector<double> out(n * H * D), probs(H * n * n);
    attention_forward_train(out.data(), probs.data(), q.data() + first * H * D,
                            k.data() + first * KV * D, v.data() + first * KV * D, d, cx, seg);
    double loss = 0.0;
    std::vector<double> dout(out.size());
    for (size_t i = 0; i < out.size(); ++i) loss += 0.5 * out[i] * out[i], dout[i] = out[i];
    attention_backward(dq.data() + first * H * D, dk.data() + first * KV * D,
                       dv.data() + first * KV * D, dout.data(), q.data() + first * H * D,
                       k.data() + first * KV * D, v.data() + first * KV * D, probs.data(), d, cx,
                       seg);
    return loss;
  };
  std::vector<double> dq(q.size(), 0.0), dk(k.size(), 0.0), dv(v.size(), 0.0);
  const double packed = run(0, T, segment.data(), dq, dk, dv);
  std::vector<double> dq1(q.size(), 0.0), dk1(k.size(), 0.0), dv1(v.size(), 0.0);
  const double separate = run(0, 3, nullptr, dq1, dk1, dv1) + run(3, 3, nullptr, dq1, dk1, dv1);
  EXPECT_NEAR(packed, separate, 1e-12);
  for (size_t i = 0; i < dq.size(); ++i) EXPECT_NEAR(dq[i], dq1[i], 1e-12) << i;
  for (size_t i = 0; i < dk.size(); ++i) EXPECT_NEAR(dk[i], dk1[i], 1e-12) << i;
  for (size_t i = 0; i < dv.size(); ++i) EXPECT_NEAR(dv[i], dv1[i], 1e-12) << i;
}

}  // namespace
}  // namespace toy
