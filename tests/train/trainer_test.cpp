// The training loop: data-parallel replicas (one per thread) compute the same
// steps as one thread up to float rounding, and a run is reproducible for a
// given seed and thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "core/error.h"
#include "train/scratch_config.h"
#include "train/trainer.h"

namespace toy::train {
namespace {

// A tiny untied llama (vocab 17, width 16, context 8) and a periodic token stream.
struct Tiny {
  std::unique_ptr<ParamStore<float>> store;
  std::unique_ptr<Dataset> data;
};

Tiny make_tiny(int64_t n_layer = 2) {
  ScratchShape s;
  s.n_vocab = 17, s.n_embd = 16, s.n_layer = n_layer, s.n_head = 4, s.n_head_kv = 2, s.n_ff = 24;
  s.n_ctx = 8;
  Tiny t;
  t.store = std::make_unique<ParamStore<float>>(
      scratch_config(s), [](const TensorSpec& spec) { return spec.name == "output.weight"; });
  init_random(*t.store, 11, 1.0);
  std::vector<int32_t> tokens(2000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 7 + i / 13) % 17);
  t.data = std::make_unique<Dataset>(tokens, 0.1, 8, "synthetic");
  return t;
}

std::vector<double> run(int threads, std::vector<float>* weights) {
  Tiny tiny = make_tiny();
  ParamStore<float>& store = *tiny.store;
  const Dataset& data = *tiny.data;
  TrainOptions o;
  o.steps = 6;
  o.n_seq = 5;  // odd: the replicas get 2 and 3 sequences
  o.n_pos = 8;
  o.accum = 2;
  o.adamw.lr = 1e-2;
  o.adamw.weight_decay = 0.1;
  o.schedule.lr = 1e-2;
  o.schedule.warmup = 2;
  o.grad_clip = 0.5;
  ThreadPool pool(threads);
  Trainer trainer(store, data, o, pool);
  std::vector<double> losses;
  trainer.run([&](const StepReport& r) { losses.push_back(r.loss); }, nullptr);
  losses.push_back(trainer.evaluate_val(0));
  weights->assign(store.params(), store.params() + store.total());
  return losses;
}

TEST(Trainer, DataParallelReplicasMatchOneThreadAndAreReproducible) {
  std::vector<float> w1, w2, w2_again;
  const std::vector<double> one = run(1, &w1), two = run(2, &w2), again = run(2, &w2_again);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(two[i], one[i], 1e-4 * one[i]) << i;
  EXPECT_LT(one[5], one[0]);
  EXPECT_EQ(two, again);
  EXPECT_EQ(w2, w2_again);
}

// --compute-type f16's dynamic loss scaling on an injected overflow: a start scale of 2^40
// makes the scaled loss gradients overflow F16 (inf), so those steps are skipped — the weights
// and AdamW moments do not move — and the scale halves each time until the gradients fit;
// then the steps train, and after loss_scale_interval clean steps the scale doubles again.
TEST(Trainer, F16LossScalingSkipsOverflowingStepsAndBacksOff) {
  Tiny tiny = make_tiny();
  ParamStore<float>& store = *tiny.store;
  const Dataset& data = *tiny.data;
  TrainOptions o;
  o.steps = 60;
  o.n_seq = 4;
  o.n_pos = 8;
  o.adamw.lr = 1e-2;
  o.schedule.lr = 1e-2;
  o.schedule.cosine = false;
  o.matmul_mode = MatmulMode::TrainF16;
  o.loss_scaling = true;
  o.loss_scale_init = std::ldexp(1.0, 40);
  o.loss_scale_interval = 5;
  ThreadPool pool(2);
  Trainer trainer(store, data, o, pool);
  const std::vector<float> w0(store.params(), store.params() + store.total());

  StepReport first = trainer.step();
  EXPECT_TRUE(first.skipped);
  EXPECT_EQ(first.loss_scale, std::ldexp(1.0, 39));
  EXPECT_FALSE(std::isfinite(first.grad_norm));
  EXPECT_EQ(std::vector<float>(store.params(), store.params() + store.total()), w0);
  for (int64_t i = 0; i < store.total(); ++i) ASSERT_EQ(store.moment1()[i], 0.0f);

  std::vector<StepReport> reports = {first};
  for (int step = 2; step <= 60; ++step) reports.push_back(trainer.step());
  // Skipped steps come first, each halving the scale; then clean steps, doubling every 5.
  size_t skipped = 0;
  while (skipped < reports.size() && reports[skipped].skipped) ++skipped;
  ASSERT_GT(skipped, 1u);
  ASSERT_LT(skipped, 40u);
  const double settled = reports[skipped - 1].loss_scale;
  EXPECT_EQ(settled, std::ldexp(1.0, 40 - static_cast<int>(skipped)));
  EXPECT_TRUE(std::isfinite(reports[skipped].grad_norm));
  EXPECT_EQ(reports[skipped + 4].loss_scale, 2.0 * settled);  // 5 clean steps
  int later_skips = 0;
  for (size_t i = skipped; i < reports.size(); ++i) later_skips += reports[i].skipped;
  double before = 0.0, after = 0.0;
  for (size_t i = skipped; i < skipped + 5; ++i) before += reports[i].loss;
  for (size_t i = reports.size() - 5; i < reports.size(); ++i) after += reports[i].loss;
  EXPECT_LT(after, before) << later_skips << " later skips";
  // The state a checkpoint keeps carries the scale and the skipped count.
  const TrainerState state = trainer.state();
  EXPECT_EQ(state.loss_scale, reports.back().loss_scale);
  EXPECT_GE(state.skipped, static_cast<int64_t>(skipped));
}

// A weight that makes the forward overflow stops training with the first activation tap
// that saw a non-finite value, not only "the loss is not finite".
TEST(Trainer, ANonFiniteLossNamesTheFirstActivationThatWentBad) {
  Tiny tiny = make_tiny(3);
  ParamStore<float>& store = *tiny.store;
  const Dataset& data = *tiny.data;
  const ParamTensor* down = store.find("blk.1.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  store.params()[down->offset + 3] = INFINITY;
  TrainOptions o;
  o.n_seq = 4;
  o.n_pos = 8;
  ThreadPool pool(2);
  Trainer trainer(store, data, o, pool);
  try {
    trainer.step();
    ADD_FAILURE() << "trained through an infinite weight";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.1.ffn_out"), std::string::npos) << e.what();
  }
}

// --tap on a telemetry step: the taps asked for, over the first replica's rows.
TEST(Trainer, TapsAreReportedOnTelemetrySteps) {
  Tiny tiny = make_tiny();
  ParamStore<float>& store = *tiny.store;
  const Dataset& data = *tiny.data;
  TrainOptions o;
  o.n_seq = 4;
  o.n_pos = 8;
  ThreadPool pool(1);
  Trainer trainer(store, data, o, pool);
  trainer.set_tensor_stats(2);
  trainer.set_taps("resid_post,blk.0.attn_norm");
  EXPECT_TRUE(trainer.step().taps.empty());
  const StepReport second = trainer.step();
  ASSERT_EQ(second.taps.size(), 3u);
  EXPECT_EQ(second.taps[0].name, "blk.0.attn_norm");
  EXPECT_EQ(second.taps[1].name, "blk.0.resid_post");
  EXPECT_EQ(second.taps[2].name, "blk.1.resid_post");
  EXPECT_EQ(second.taps[2].count, 4 * 8 * 16);
  EXPECT_THROW(trainer.set_taps("blk.2.ffn_out"), Error);
}

}  // namespace
}  // namespace toy::train
