// Packed rows through the whole training model: two examples sharing one row
// (positions restarting at the second, block-causal attention) give the loss and
// every parameter gradient of the two examples run in rows of their own, in
// double precision, and in float on the backend's kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "train/model.h"
#include "train/params.h"
#include "train/scratch_config.h"

namespace toy::train {
namespace {

template <typename Real>
void expect_packed_row_equals_its_examples(double tolerance) {
  ScratchShape s;
  s.n_vocab = 11, s.n_embd = 8, s.n_layer = 2, s.n_head = 2, s.n_ff = 12, s.n_ctx = 8;
  const ModelConfig config = scratch_config(s);
  auto untied = [](const TensorSpec& spec) { return spec.name == "output.weight"; };
  ParamStore<Real> packed(config, untied), alone(config, untied);
  init_random(packed, 5, 1.0);
  init_random(alone, 5, 1.0);
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};

  // Example A: 5 positions, example B: 3 positions (B's last target masked).
  const std::vector<int32_t> a_tokens = {1, 4, 2, 9, 3}, a_targets = {4, 2, 9, 3, 7};
  const std::vector<int32_t> b_tokens = {6, 5, 10}, b_targets = {5, 10, -1};
  std::vector<int32_t> tokens = a_tokens, targets = a_targets;
  tokens.insert(tokens.end(), b_tokens.begin(), b_tokens.end());
  targets.insert(targets.end(), b_targets.begin(), b_targets.end());
  const std::vector<int32_t> positions = {0, 1, 2, 3, 4, 0, 1, 2};
  const std::vector<int32_t> segment = {0, 0, 0, 0, 0, 1, 1, 1};

  TrainModel<Real> row(packed, 1, 8);
  const CrossEntropyResult r =
      row.forward(tokens.data(), targets.data(), positions.data(), segment.data(), cx);
  row.backward(1.0, cx);

  TrainModel<Real> model_a(alone, 1, 5), model_b(alone, 1, 3);
  const CrossEntropyResult ra = model_a.forward(a_tokens.data(), a_targets.data(), cx);
  model_a.backward(1.0, cx);
  const CrossEntropyResult rb = model_b.forward(b_tokens.data(), b_targets.data(), cx);
  model_b.backward(1.0, cx);

  EXPECT_EQ(r.counted, ra.counted + rb.counted);
  EXPECT_NEAR(r.loss_sum, ra.loss_sum + rb.loss_sum, tolerance * std::fabs(r.loss_sum));
  double worst = 0.0;
  for (int64_t i = 0; i < packed.total(); ++i) {
    const double g = packed.grads()[i], want = alone.grads()[i];
    worst = std::max(worst, std::fabs(g - want) / (1e-3 + std::fabs(want)));
  }
  EXPECT_LT(worst, tolerance) << "worst relative gradient difference";
}

TEST(PackedModel, PackedRowEqualsItsExamplesInDouble) {
  expect_packed_row_equals_its_examples<double>(1e-10);
}

TEST(PackedModel, PackedRowEqualsItsExamplesInFloat) {
  expect_packed_row_equals_its_examples<float>(2e-4);
}

}  // namespace
}  // namespace toy::train
