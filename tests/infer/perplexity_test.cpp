// The perplexity loop against a direct computation of its definition: whole chunks run in
// one batch with all logits, BOS in front, the second half scored, and llama.cpp's
// uncertainty formula.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "infer/perplexity.h"
#include "infer/session.h"
#include "model/model.h"
#include "support/fixtures.h"

namespace toy {
namespace {

std::vector<int32_t> pseudo_text(int n, int n_vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = (i * 131 + 7) % n_vocab;
  return ids;
}

TEST(Perplexity, EqualsDefinition) {
  const Model model = Model::load(testing::fixture_path("models/llama.gguf"));
  const int64_t V = model.config.n_vocab, n_ctx = 20;
  ThreadPool pool(2);
  Session session(model, pool, {.n_ctx = n_ctx, .kv_type = DType::F32, .mode = MatmulMode::Exact});
  const std::vector<int32_t> tokens = pseudo_text(75, static_cast<int>(V));  // 3 chunks + 15

  // The definition, written out: each chunk whole, BOS = 1 first, positions 10..18 scored.
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  std::vector<double> running;
  std::vector<float> logits(static_cast<size_t>(n_ctx * V));
  for (int64_t c = 0; c < 3; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    chunk[0] = 1;
    session.reset();
    session.prefill_all(chunk, logits.data());
    for (int64_t i = n_ctx / 2; i < n_ctx - 1; ++i) {
      const float* l = &logits[static_cast<size_t>(i * V)];
      double z = 0;
      for (int64_t j = 0; j < V; ++j) z += std::exp(double(l[j]));
      const double v = std::log(z) - l[chunk[i + 1]];
      nll += v;
      nll2 += v * v;
      ++count;
    }
    running.push_back(std::exp(nll / count));
  }
  const double mean = nll / count, ppl = std::exp(mean);
  const double uncertainty = ppl * std::sqrt((nll2 / count - mean * mean) / (count - 1));

  for (int64_t batch : {int64_t{20}, int64_t{3}}) {
    std::vector<double> seen;
    const PerplexityResult r =
        perplexity(session, tokens, {.n_ctx = n_ctx, .chunks = -1, .bos = 1, .n_batch = batch},
                   [&](int64_t chunk, double p) {
                     EXPECT_EQ(chunk, static_cast<int64_t>(seen.size()) + 1);
                     seen.push_back(p);
                   });
    EXPECT_EQ(r.n_chunks, 3);
    EXPECT_EQ(r.n_scored, 3 * (n_ctx - n_ctx / 2 - 1));
    EXPECT_NEAR(r.ppl, ppl, 1e-5 * ppl) << "batch " << batch;
    EXPECT_NEAR(r.uncertainty, uncertainty, 1e-4 * uncertainty) << "batch " << batch;
    ASSERT_EQ(seen.size(), running.size());
    for (size_t i = 0; i < seen.size(); ++i) EXPECT_NEAR(seen[i], running[i], 1e-5 * running[i]);
  }
  // --chunks caps the count; without BOS the text's own first token stays.
  const PerplexityResult two = perplexity(session, tokens, {.n_ctx = n_ctx, .chunks = 2});
  EXPECT_EQ(two.n_chunks, 2);
  EXPECT_NE(two.ppl, running[1]);
}

TEST(Perplexity, RefusesTooShortText) {
  const Model model = Model::load(testing::fixture_path("models/llama.gguf"));
  ThreadPool pool(1);
  Session session(model, pool, {.n_ctx = 16, .kv_type = DType::F32});
  const std::vector<int32_t> tokens = pseudo_text(31, 320);
  try {
    perplexity(session, tokens, {.n_ctx = 16});
    FAIL() << "31 tokens make less than 2 chunks of 16";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs at least 32"), std::string::npos) << e.what();
  }
  // A chunk longer than the session's context.
  EXPECT_THROW(perplexity(session, pseudo_text(64, 320), {.n_ctx = 32}), Error);
}

TEST(Perplexity, TokenNll) {
  const float logits[3] = {1.0f, 2.0f, 3.0f};
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(token_nll(logits, 3, 0), std::log(z) - 1.0, 1e-6);
  EXPECT_NEAR(token_nll(logits, 3, 2), std::log(z) - 3.0, 1e-6);
}

}  // namespace
}  // namespace toy
