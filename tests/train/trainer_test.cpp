// The training loop: data-parallel replicas (one per thread) compute the same
// steps as one thread up to float rounding, and a run is reproducible for a
// given seed and thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "train/scratch_config.h"
#include "train/trainer.h"

namespace toy::train {
namespace {

std::vector<double> run(int threads, std::vector<float>* weights) {
  ScratchShape s;
  s.n_vocab = 17, s.n_embd = 16, s.n_layer = 2, s.n_head = 4, s.n_head_kv = 2, s.n_ff = 24;
  s.n_ctx = 8;
  ParamStore<float> store(scratch_config(s),
                          [](const TensorSpec& spec) { return spec.name == "output.weight"; });
  init_random(store, 11, 1.0);
  std::vector<int32_t> tokens(2000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 7 + i / 13) % 17);
  const Dataset data(tokens, 0.1, 8, "synthetic");
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

}  // namespace
}  // namespace toy::train
