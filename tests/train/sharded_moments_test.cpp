// ZeRO-1's moments (params.h use_moments, checkpoint.h): a store can hold the AdamW moments
// of one contiguous shard only; a checkpoint written through a MomentSource (what rank 0
// does, gathering each tensor's moments from their ranks) is the same file as one written
// from a store holding them all; and loading a checkpoint into a shard reads that shard's
// part of every tensor (also where a tensor straddles the shard's ends).
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/fixtures.h"
#include "train/checkpoint.h"
#include "train/params.h"
#include "train/scratch_config.h"

namespace toy::train {
namespace {

std::unique_ptr<ParamStore<float>> make_store() {
  ScratchShape s;
  s.n_vocab = 17, s.n_embd = 16, s.n_layer = 2, s.n_head = 4, s.n_head_kv = 2, s.n_ff = 24;
  s.n_ctx = 8;
  auto store = std::make_unique<ParamStore<float>>(
      scratch_config(s), [](const TensorSpec& spec) { return spec.name == "output.weight"; });
  init_random(*store, 3, 1.0);
  return store;
}

TrainerState some_state() {
  TrainerState state;
  state.step = 7;
  state.rng = "1 2 3";
  state.eval_rng = "4 5 6";
  state.loss_scale = 1.0;
  return state;
}

TEST(ShardedMoments, AStoreAllocatesOnlyItsShardAndAdamWTakesTheWholeStore) {
  auto store = make_store();
  EXPECT_FALSE(store->has_moments());
  store->use_moments(100, 300);
  EXPECT_EQ(store->moments_begin(), 100);
  EXPECT_EQ(store->moments_end(), 300);
  store->moment1()[0] = 1.0f;
  store->use_moments(100, 300);  // the same range keeps the values
  EXPECT_EQ(store->moment1()[0], 1.0f);
  auto whole = make_store();
  adamw_step(*whole, AdamWConfig{}, 1e-3, 1);
  EXPECT_EQ(whole->moments_begin(), 0);
  EXPECT_EQ(whole->moments_end(), whole->total());
}

TEST(ShardedMoments, CheckpointThroughAMomentSourceIsTheSameFileAndLoadsIntoShards) {
  auto full = make_store();
  full->use_moments(0, full->total());
  // Distinct values inside the tensors, 0 in the alignment padding (which no file holds).
  for (const ParamTensor& p : full->tensors())
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
      full->moment1()[i] = 0.5f * float(i) + 1.0f;
      full->moment2()[i] = float(i % 97) + 0.25f;
    }
  const RunDescription run = {{"mode", "test"}};
  const std::string direct = testing::temp_path("-direct"), sourced = testing::temp_path("-src");
  save_checkpoint(direct, *full, some_state(), run);
  // A source that serves each requested range, as rank 0's gather does.
  std::vector<std::pair<int64_t, int64_t>> asked;
  const MomentSource source = [&](int moment, int64_t begin, int64_t end, float* dst) {
    asked.push_back({begin, end});
    const float* m = moment == 1 ? full->moment1() : full->moment2();
    std::copy(m + begin, m + end, dst);
  };
  save_checkpoint(sourced, *full, some_state(), run, source);
  EXPECT_EQ(asked.size(), 2 * full->tensors().size());
  EXPECT_TRUE(testing::read_text(checkpoint_file(direct)) ==
              testing::read_text(checkpoint_file(sourced)));

  // Three shards that cut tensors in the middle: each reads its part of the file.
  const int64_t total = full->total();
  const std::vector<int64_t> bounds = {0, total / 3 + 5, 2 * total / 3 - 7, total};
  for (size_t r = 0; r + 1 < bounds.size(); ++r) {
    auto shard = make_store();
    shard->use_moments(bounds[r], bounds[r + 1]);
    const TrainerState state = load_checkpoint(direct, *shard, run);
    EXPECT_EQ(state.step, 7);
    for (int64_t i = bounds[r]; i < bounds[r + 1]; ++i) {
      ASSERT_EQ(shard->moment1()[i - bounds[r]], full->moment1()[i]) << "shard " << r << " m " << i;
      ASSERT_EQ(shard->moment2()[i - bounds[r]], full->moment2()[i]) << "shard " << r << " v " << i;
    }
    for (int64_t i = 0; i < total; ++i) ASSERT_EQ(shard->params()[i], full->params()[i]);
  }
  // A store without moments yet reads them all.
  auto fresh = make_store();
  load_checkpoint(sourced, *fresh, run);
  ASSERT_EQ(fresh->moments_end(), total);
  for (int64_t i = 0; i < total; ++i) ASSERT_EQ(fresh->moment2()[i], full->moment2()[i]);
  std::filesystem::remove_all(direct);
  std::filesystem::remove_all(sourced);
}

}  // namespace
}  // namespace toy::train
