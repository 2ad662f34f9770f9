// Activation taps (model/taps.h) on a real model (stories260K): the names and layers asked
// for, every row counted, layer 0's attn_norm equal to rmsnorm(embedding)·weight computed
// here from the weights, the same statistics whether the tokens go in one prefill or one
// at a time, and bad tap names refused.
#include "model/taps.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "infer/session.h"
#include "model/model.h"
#include "quant/quant.h"
#include "support/fixtures.h"

namespace toy {
namespace {

const std::vector<int32_t> kTokens = {1, 403, 407, 261, 378, 12, 89, 300};

TEST(LayerTaps, RecordTheAskedPointsOverEveryRow) {
  const Model model = Model::load(testing::fixture_path("models/stories260K.gguf"));
  const ModelConfig& c = model.config;
  ThreadPool pool(2);
  LayerTaps taps("attn_norm,blk.2.ffn_out,resid_post");
  taps.check_layers(c.n_layer);
  Session session(model, pool, {.kv_type = DType::F32});
  session.set_taps(&taps);
  session.prefill(kTokens);
  const int64_t T = static_cast<int64_t>(kTokens.size());
  std::vector<std::string> names;
  for (const TapStats& s : taps.stats()) {
    names.push_back(s.name);
    EXPECT_EQ(s.count, T * c.n_embd) << s.name;
    EXPECT_EQ(s.nonfinite, 0) << s.name;
    EXPECT_GT(s.rms(), 0.0) << s.name;
    EXPECT_GE(s.max_abs, s.rms()) << s.name;
  }
  ASSERT_EQ(static_cast<int64_t>(names.size()), 2 * c.n_layer + 1);
  EXPECT_EQ(names[0], "blk.0.attn_norm");
  EXPECT_EQ(names[1], "blk.0.resid_post");
  EXPECT_EQ(names[5], "blk.2.ffn_out");
  EXPECT_EQ(names.back(), "blk.4.resid_post");

  // Layer 0's attn_norm from the weights: x / rms(x) · w per row of the embedding.
  const int64_t E = c.n_embd;
  std::vector<float> row(static_cast<size_t>(E)), w(static_cast<size_t>(E));
  quant::dequantize_row(model.weights.layers[0].attn_norm.type,
                        model.weights.layers[0].attn_norm.data, w.data(), E);
  double sum = 0.0, squares = 0.0;
  for (int32_t id : kTokens) {
    const Tensor& table = model.weights.token_embd;
    quant::dequantize_row(table.type, table.row(id), row.data(), E);
    double ms = 0.0;
    for (float v : row) ms += double(v) * v;
    const double inv = 1.0 / std::sqrt(ms / double(E) + c.rms_eps);
    for (int64_t i = 0; i < E; ++i) {
      const double y = row[i] * inv * w[i];
      sum += y;
      squares += y * y;
    }
  }
  const TapStats& first = taps.stats()[0];
  EXPECT_NEAR(first.mean(), sum / double(T * E), 1e-5);
  EXPECT_NEAR(first.rms(), std::sqrt(squares / double(T * E)), 1e-5 * first.rms());

  // One token at a time through the cache: the same rows, so the same statistics.
  LayerTaps stepwise("attn_norm,blk.2.ffn_out,resid_post");
  Session again(model, pool, {.kv_type = DType::F32});
  again.set_taps(&stepwise);
  for (int32_t id : kTokens) again.decode(id);
  ASSERT_EQ(stepwise.stats().size(), taps.stats().size());
  for (size_t i = 0; i < taps.stats().size(); ++i) {
    const TapStats &a = taps.stats()[i], &b = stepwise.stats()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.count, b.count);
    EXPECT_NEAR(a.rms(), b.rms(), 1e-4 * a.rms()) << a.name;
    EXPECT_NEAR(a.max_abs, b.max_abs, 1e-4 * a.max_abs) << a.name;
  }
}

TEST(LayerTaps, BadNamesAreRefusedWithThePoints) {
  for (const char* bad : {"attn", "blk.x.ffn_out", "blk.1", "ffn_out,", "blk..ffn_out"}) {
    try {
      LayerTaps taps(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--tap"), std::string::npos) << e.what();
    }
  }
  LayerTaps deep("blk.7.resid_post");
  EXPECT_THROW(deep.check_layers(5), Error);
  EXPECT_NO_THROW(deep.check_layers(8));
}

}  // namespace
}  // namespace toy
