// Session behaviour beyond the fixtures: chunked prefill, context limits, bad
// tokens, reset, and the KV cache types.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "infer/kv_cache.h"
#include "infer/session.h"
#include "model/model.h"
#include "support/fixtures.h"

namespace toy {
namespace {

Model load(const char* name) {
  return Model::load(testing::fixture_path(std::string("models/") + name + ".gguf"));
}

std::vector<int32_t> prompt(int n) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = (i * 37 + 11) % 320;
  return ids;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Session, ChunkedPrefillEqualsOneBatch) {
  const Model model = load("gemma2");  // sliding window across chunk boundaries
  ThreadPool pool(2);
  const std::vector<int32_t> ids = prompt(30);
  Session whole(model, pool, {.kv_type = DType::F32, .mode = MatmulMode::Exact});
  Session chunked(model, pool, {.kv_type = DType::F32, .mode = MatmulMode::Exact, .max_batch = 7});
  std::vector<float> a(ids.size() * 320), b(ids.size() * 320);
  whole.prefill_all(ids, a.data());
  chunked.prefill_all(ids, b.data());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4f) << i;
  EXPECT_EQ(chunked.n_past(), 30);
  const auto last = chunked.prefill(std::vector<int32_t>{5});
  EXPECT_EQ(last.size(), 320u);
}

TEST(Session, ContextOverflowIsAnErrorAndChangesNothing) {
  const Model model = load("llama");
  ThreadPool pool(1);
  Session session(model, pool, {.n_ctx = 8});
  EXPECT_EQ(session.n_ctx(), 8);
  session.prefill(prompt(6));
  const std::string msg = error_of([&] { session.prefill(prompt(3)); });
  EXPECT_NE(msg.find("context length exceeded"), std::string::npos) << msg;
  EXPECT_EQ(session.n_past(), 6);
  session.decode(1);
  session.decode(2);
  EXPECT_NE(error_of([&] { session.decode(3); }).find("context"), std::string::npos);
}

TEST(Session, DefaultContextIsTheModels) {
  const Model model = load("stories260K");
  ThreadPool pool(1);
  EXPECT_EQ(Session(model, pool).n_ctx(), 512);
}

TEST(Session, OutOfRangeTokenIsAnError) {
  const Model model = load("llama");
  ThreadPool pool(1);
  Session session(model, pool);
  const std::string msg = error_of([&] { session.prefill(std::vector<int32_t>{1, 320}); });
  EXPECT_NE(msg.find("token id 320"), std::string::npos) << msg;
  EXPECT_EQ(session.n_past(), 0);
  EXPECT_NE(error_of([&] { session.decode(-1); }).find("token id -1"), std::string::npos);
  EXPECT_NE(error_of([&] { session.prefill(std::vector<int32_t>{}); }).find("at least one"),
            std::string::npos);
}

TEST(Session, ResetStartsOver) {
  const Model model = load("qwen3");
  ThreadPool pool(2);
  Session session(model, pool, {.kv_type = DType::F32});
  session.prefill(prompt(5));  // a different history, then forgotten
  session.decode(7);
  session.reset();
  EXPECT_EQ(session.n_past(), 0);
  session.prefill(prompt(9));
  const auto again = session.prefill(std::vector<int32_t>{4});
  Session fresh(model, pool, {.kv_type = DType::F32});
  fresh.prefill(prompt(9));
  const auto expected = fresh.prefill(std::vector<int32_t>{4});
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(again[i], expected[i]);
}

TEST(Session, TruncateKeepsAPrefix) {
  const Model model = load("llama");
  ThreadPool pool(1);
  Session session(model, pool, {.kv_type = DType::F32});
  session.prefill(prompt(10));
  session.truncate(6);
  EXPECT_EQ(session.n_past(), 6);
  session.decode(9);
  const auto last = session.decode(9);  // sequence: prompt(6), 9, 9
  const std::vector<float> after_truncate(last.begin(), last.end());
  Session fresh(model, pool, {.kv_type = DType::F32});
  std::vector<int32_t> ids = prompt(6);
  ids.push_back(9);
  fresh.prefill(ids);
  const auto expected = fresh.decode(9);
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(after_truncate[i], expected[i], 1e-5f);
  EXPECT_NE(error_of([&] { session.truncate(20); }).find("cannot keep"), std::string::npos);
}

TEST(KvCache, TypesAndSizes) {
  const Model model = load("llama");  // 2 layers, K/V rows of 2 heads x 16
  EXPECT_EQ(KvCache(model.config, 10, DType::F32).bytes(), 2u * 2 * 10 * 32 * 4);
  EXPECT_EQ(KvCache(model.config, 10, DType::F16).bytes(), 2u * 2 * 10 * 32 * 2);
  EXPECT_EQ(KvCache(model.config, 10, DType::Q8_0).bytes(), 2u * 2 * 10 * 34);
  EXPECT_EQ(parse_kv_type("q8_0"), DType::Q8_0);
  EXPECT_NE(error_of([] { parse_kv_type("q4_0"); }).find("q4_0"), std::string::npos);
  EXPECT_NE(error_of([&] { KvCache(model.config, 10, DType::Q4_0); }).find("not supported"),
            std::string::npos);
  // One KV head of 16 values cannot hold a Q8_0 block of 32.
  const Model tied = load("llama-tied");
  EXPECT_NE(error_of([&] { KvCache(tied.config, 10, DType::Q8_0); }).find("multiple of 32"),
            std::string::npos);
}

}  // namespace
}  // namespace toy
