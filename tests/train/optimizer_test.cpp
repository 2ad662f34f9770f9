// AdamW, the learning-rate schedule, gradient clipping and gradient
// accumulation.
#include <gtest/gtest.h>

#include "kernels/compute.h"
#include "kernels/cpu/features.h"

#include <cmath>
#include <vector>

#include "train/model.h"
#include "train/optimizer.h"
#include "train/params.h"
#include "train/scratch_config.h"

namespace toy::train {
namespace {

TEST(AdamW, TwoStepsMatchTheFormulaWithBiasCorrectionAndDecoupledDecay) {
  AdamWConfig c;
  c.beta1 = 0.9;
  c.beta2 = 0.99;
  c.eps = 1e-8;
  c.weight_decay = 0.1;
  const double lr = 0.01;
  std::vector<double> w = {0.5, -1.0}, m(2, 0.0), v(2, 0.0);
  const std::vector<double> g1 = {0.2, -0.3}, g2 = {-0.1, 0.4};
  std::vector<double> ew = w, em(2, 0.0), ev(2, 0.0);
  for (int step = 1; step <= 2; ++step) {
    const auto& g = step == 1 ? g1 : g2;
    adamw_update(w.data(), g.data(), m.data(), v.data(), 2, c, lr, step, true);
    for (int i = 0; i < 2; ++i) {
      em[i] = 0.9 * em[i] + 0.1 * g[i];
      ev[i] = 0.99 * ev[i] + 0.01 * g[i] * g[i];
      const double m_hat = em[i] / (1 - std::pow(0.9, step));
      const double v_hat = ev[i] / (1 - std::pow(0.99, step));
      ew[i] -= lr * (m_hat / (std::sqrt(v_hat) + 1e-8) + 0.1 * ew[i]);
    }
  }
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(w[i], ew[i], 1e-15);
}

TEST(AdamW, DecaysOnlyTwoDimensionalWeights) {
  ScratchShape s;
  s.n_vocab = 5, s.n_embd = 4, s.n_layer = 1, s.n_head = 2, s.n_ff = 6, s.n_ctx = 4;
  ParamStore<float> store(scratch_config(s), [](const TensorSpec&) { return false; });
  init_random(store, 1, 1.0);
  const std::vector<float> before(store.params(), store.params() + store.total());
  AdamWConfig c;
  c.weight_decay = 0.5;
  adamw_step(store, c, 0.1, 1);  // zero gradients: only decay moves weights
  for (const ParamTensor& p : store.tensors()) {
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
      const float expected = p.spec.n_dims == 2 ? before[i] * (1.0f - 0.05f) : before[i];
      EXPECT_FLOAT_EQ(store.params()[i], expected) << p.spec.name;
    }
  }
}

TEST(LrSchedule, WarmsUpLinearlyThenFollowsTheCosineToMinLr) {
  LrSchedule s;
  s.lr = 1e-3;
  s.min_lr = 1e-4;
  s.warmup = 10;
  s.total = 110;
  s.cosine = true;
  EXPECT_DOUBLE_EQ(s.at(0), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(9), 1e-3);
  EXPECT_NEAR(s.at(10), 1e-3, 1e-12);
  EXPECT_NEAR(s.at(60), 0.5 * (1e-3 + 1e-4), 1e-12);
  EXPECT_NEAR(s.at(110), 1e-4, 1e-12);
  EXPECT_NEAR(s.at(500), 1e-4, 1e-12);
  s.cosine = false;
  EXPECT_DOUBLE_EQ(s.at(60), 1e-3);
}

TEST(GradClip, ScalesTheGlobalNormDownToTheLimitOnly) {
  std::vector<float> g = {3.0f, 4.0f};
  const double norm = std::sqrt(squared_norm(g.data(), 2));
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_DOUBLE_EQ(clip_by_global_norm(g.data(), 2, norm, 10.0), 1.0);
  EXPECT_FLOAT_EQ(g[0], 3.0f);
  clip_by_global_norm(g.data(), 2, norm, 1.0);
  EXPECT_NEAR(std::sqrt(squared_norm(g.data(), 2)), 1.0, 1e-6);
  EXPECT_NEAR(g[0] / g[1], 0.75, 1e-6);
}

TEST(GradAccumulation, TwoHalfBatchesGiveTheFullBatchGradient) {
  ScratchShape s;
  s.n_vocab = 9, s.n_embd = 8, s.n_layer = 2, s.n_head = 2, s.n_ff = 12, s.n_ctx = 4;
  const ModelConfig config = scratch_config(s);
  auto none = [](const TensorSpec& spec) { return spec.name == "output.weight"; };
  ParamStore<double> full(config, none), accumulated(config, none);
  init_random(full, 3, 1.0);
  init_random(accumulated, 3, 1.0);
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<int32_t> targets = {2, 3, 4, 5, 6, 7, 8, 0};
  TrainModel<double> big(full, 2, 4), small(accumulated, 1, 4);
  const CrossEntropyResult r = big.forward(tokens.data(), targets.data(), cx);
  big.backward(1.0 / double(r.counted), cx);
  for (int half = 0; half < 2; ++half) {
    const CrossEntropyResult h =
        small.forward(tokens.data() + 4 * half, targets.data() + 4 * half, cx);
    small.backward(1.0 / (double(h.counted) * 2.0), cx);
  }
  for (int64_t i = 0; i < full.total(); ++i)
    EXPECT_NEAR(full.grads()[i], accumulated.grads()[i], 1e-12);
}

}  // namespace
}  // namespace toy::train
