// Hybrid models (gated delta-net layers beside attention layers): the layer kinds
// round-trip through GGUF, a prompt prefilled at once gives the logits of the same
// prompt decoded token by token through the recurrent state, batched decode equals
// separate sessions, and the cache refuses to rewind a recurrent state.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "hybrid_model.h"
#include "infer/batch_decode.h"
#include "infer/session.h"
#include "kernels/cpu/features.h"
#include "model/model.h"
#include "support/fixtures.h"

namespace toy {
namespace {

std::vector<int32_t> tokens(int n, int64_t n_vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = (i * 37 + 11) % n_vocab;
  return ids;
}

double max_relative(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 1e-12;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

TEST(Hybrid, LayerKindsRoundTripThroughGguf) {
  const Model model = Model::load(testing::write_hybrid("attn,gdn,gdn,gdn", 8));
  const ModelConfig& c = model.config;
  ASSERT_EQ(c.layer_kinds.size(), 8u);
  for (int64_t il = 0; il < 8; ++il) EXPECT_EQ(c.is_gdn(il), il % 4 != 0) << il;
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.gdn.d_conv, 4);
  EXPECT_EQ(c.gdn.d_state, 12);
  EXPECT_EQ(c.gdn.n_v_head, 4);
  EXPECT_EQ(c.gdn.d_inner, 48);
  EXPECT_TRUE(model.weights.layers[1].ssm_conv1d.data);
  EXPECT_FALSE(model.weights.layers[1].attn_q.data);
  EXPECT_TRUE(model.weights.layers[4].attn_q.data);
}

// Save a loaded hybrid again (every tensor through the visitor) and load it: the
// same kinds, the same logits.
TEST(Hybrid, SaveLoadKeepsTheLogits) {
  const Model a = Model::load(testing::write_hybrid("gdn,attn", 4, 3));
  gguf::Writer writer;
  a.config.write_gguf_metadata(writer);
  writer.set("tokenizer.ggml.model", gguf::Value::string("none"));
  for_each_tensor(a.config, a.weights, [&](const TensorSpec& spec, const Tensor& t) {
    writer.add_tensor(spec.name, t.type,
                      std::vector<int64_t>(spec.ne.begin(), spec.ne.begin() + spec.n_dims), t.data);
  });
  const std::string path = testing::temp_path("-hybrid-again.gguf");
  writer.write(path);
  const Model b = Model::load(path);
  EXPECT_EQ(a.config.layer_kinds, b.config.layer_kinds);
  ThreadPool pool(2);
  const auto ids = tokens(20, a.config.n_vocab);
  std::vector<float> la(ids.size() * 97), lb(ids.size() * 97);
  Session(a, pool, {.kv_type = DType::F32, .mode = MatmulMode::Exact}).prefill_all(ids, la.data());
  Session(b, pool, {.kv_type = DType::F32, .mode = MatmulMode::Exact}).prefill_all(ids, lb.data());
  EXPECT_EQ(la, lb);
}

// The chunked delta rule (a whole prompt) and the per-token step (decode) agree
// through the whole model, across chunk boundaries (150 tokens: chunks of 64) and prompt
// chunks of the session (max_batch 7).
TEST(Hybrid, PrefillEqualsTokenByTokenDecode) {
  const Model model = Model::load(testing::write_hybrid("attn,gdn,gdn,gdn", 4));
  const int64_t V = model.config.n_vocab;
  const auto ids = tokens(150, V);
  for (int n_threads : {1, 2}) {
    ThreadPool pool(n_threads);
    Session whole(model, pool,
                  {.kv_type = DType::F32, .mode = MatmulMode::Exact, .chunked_delta_rule = true});
    std::vector<float> prefill(ids.size() * V), decode(ids.size() * V), chunked(ids.size() * V);
    whole.prefill_all(ids, prefill.data());
    Session step(model, pool, {.kv_type = DType::F32, .mode = MatmulMode::Exact});
    for (size_t t = 0; t < ids.size(); ++t) {
      const auto logits = step.decode(ids[t]);
      std::copy(logits.begin(), logits.end(), decode.begin() + t * V);
    }
    Session parts(model, pool, {.kv_type = DType::F32, .mode = MatmulMode::Exact, .max_batch = 7});
    parts.prefill_all(ids, chunked.data());
    EXPECT_LE(max_relative(decode, prefill), 1e-5) << n_threads << " threads";
    EXPECT_LE(max_relative(chunked, prefill), 1e-5) << n_threads << " threads";
  }
}

// Reset starts the recurrent state over: the same prompt twice gives the same logits.
TEST(Hybrid, ResetAndTruncateStartTheStateOver) {
  const Model model = Model::load(testing::write_hybrid("gdn", 2));
  ThreadPool pool(1);
  Session session(model, pool, {.kv_type = DType::F32});
  const auto ids = tokens(30, model.config.n_vocab);
  const auto first = std::vector<float>(session.prefill(ids).begin(), session.prefill(ids).end());
  // (the second prefill above continued the sequence; start over)
  session.reset();
  const auto logits = session.prefill(ids);
  std::vector<float> again(logits.begin(), logits.end());
  session.truncate(0);
  const auto after = session.prefill(ids);
  EXPECT_EQ(again, std::vector<float>(after.begin(), after.end()));
  // A recurrent state cannot be cut back to an arbitrary position...
  EXPECT_THROW(session.truncate(10), Error);
  // ...but it can go back to a marked one.
  session.truncate(0);
  session.prefill(std::span<const int32_t>(ids).first(12));
  session.mark();
  const auto x = session.prefill(std::span<const int32_t>(ids).subspan(12, 5));
  std::vector<float> want(x.begin(), x.end());
  session.truncate(12);
  const auto y = session.prefill(std::span<const int32_t>(ids).subspan(12, 5));
  EXPECT_EQ(want, std::vector<float>(y.begin(), y.end()));
  (void)first;
}

// A mark belongs to the sequence it was made in: once the positions before it are dropped
// (reset, or truncate below it), going back to it is refused rather than restoring the old
// sequence's recurrent state beside the new sequence's attention rows.
TEST(Hybrid, AMarkDoesNotOutliveItsSequence) {
  const Model model = Model::load(testing::write_hybrid("attn,gdn", 2));
  ThreadPool pool(1);
  Session session(model, pool, {.kv_type = DType::F32});
  const auto ids = tokens(30, model.config.n_vocab);
  const auto first12 = std::span<const int32_t>(ids).first(12);
  session.prefill(first12);
  session.mark();
  session.reset();
  session.prefill(std::span<const int32_t>(ids).subspan(5, 20));
  EXPECT_THROW(session.truncate(12), Error);
  session.truncate(0);
  session.prefill(first12);
  session.mark();
  session.prefill(std::span<const int32_t>(ids).subspan(12, 4));
  session.truncate(0);
  session.prefill(std::span<const int32_t>(ids).subspan(3, 14));
  EXPECT_THROW(session.truncate(12), Error);
}

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// forward_rows over several hybrid sequences at different positions = separate sessions;
// a slot whose cached tokens are not a prefix of the new prompt starts over.
TEST(Hybrid, BatchedDecodeEqualsSeparateSessions) {
  const Model model = Model::load(testing::write_hybrid("attn,gdn", 4, 5));
  ThreadPool pool(2);
  const int64_t V = model.config.n_vocab;
  BatchDecoder batch(model, Compute{pool, cpu::host_backend()},
                     {.n_slots = 3, .n_ctx = 64, .kv_type = DType::F32});
  std::vector<std::vector<int32_t>> ps;
  for (int s = 0; s < 3; ++s) {
    auto p = tokens(4 + 7 * s, V);
    for (auto& t : p) t = static_cast<int32_t>((t + s) % V);
    ps.push_back(p);
  }
  std::vector<int32_t> next(3);
  std::vector<std::vector<int32_t>> got(3);
  for (int s = 0; s < 3; ++s) next[s] = argmax(batch.prefill(s, ps[s]));
  for (int step = 0; step < 10; ++step) {
    std::vector<int> slots{0, 1, 2};
    for (int s = 0; s < 3; ++s) got[s].push_back(next[s]);
    const auto logits = batch.decode(slots, next);
    for (int s = 0; s < 3; ++s) next[s] = argmax(logits.subspan(s * V, V));
  }
  for (int s = 0; s < 3; ++s) {
    Session alone(model, pool, {.kv_type = DType::F32});
    auto logits = alone.prefill(ps[s]);
    std::vector<int32_t> want;
    for (int i = 0; i < 10; ++i) {
      want.push_back(argmax(logits));
      logits = alone.decode(want.back());
    }
    EXPECT_EQ(got[s], want) << "slot " << s;
  }
  // Prefix reuse: a longer prompt continues the slot, a different one starts over.
  std::vector<int32_t> longer(batch.tokens(0).begin(), batch.tokens(0).end());
  longer.push_back(3);
  EXPECT_EQ(batch.common_prefix(0, longer), batch.n_past(0));
  EXPECT_EQ(batch.common_prefix(0, ps[0]), 0);  // a strict prefix of the cache: cannot rewind
  EXPECT_THROW(batch.truncate(0, 2), Error);
}

// llama.cpp's qwen3next key: every full_attention_interval-th layer attends.
TEST(Hybrid, FullAttentionIntervalKey) {
  const std::string path = testing::write_hybrid("gdn,gdn,gdn,attn", 4);
  const auto file = gguf::File::open(path);
  gguf::Writer writer;
  for (size_t i = 0; i < file->metadata_count(); ++i) {
    const gguf::ValueRef value = file->metadata(i);
    if (value.key() != "llama.attention.head_count_kv")
      writer.set(std::string(value.key()), value.to_value());
  }
  writer.set("llama.attention.head_count_kv", gguf::Value::u32(2));
  writer.set("llama.full_attention_interval", gguf::Value::u32(4));
  for (const gguf::TensorInfo& info : file->tensors()) {
    const Tensor t = file->tensor(info);
    writer.add_tensor(std::string(info.name), t.type,
                      std::vector<int64_t>(info.ne.begin(), info.ne.begin() + info.n_dims), t.data);
  }
  const std::string again = testing::temp_path("-interval.gguf");
  writer.write(again);
  const Model model = Model::load(again);
  EXPECT_EQ(model.config.layer_kinds, Model::load(path).config.layer_kinds);
}

TEST(Hybrid, BadLayerPatternsAreErrors) {
  EXPECT_THROW(parse_layer_pattern("attn,mamba", 4), Error);
  EXPECT_THROW(parse_layer_pattern("attn,gdn,gdn", 4), Error);
  EXPECT_EQ(parse_layer_pattern("gdn", 3).size(), 3u);
}

}  // namespace
}  // namespace toy
