// attention_flash_forward on every runnable backend against the double-precision
// reference: query blocks and key tiles that do not divide the sizes, GQA,
// sliding window, softcap, a batch continuing a history, decode (T = 1) at a long
// context, 1..3 threads; and typed (F16, BF16, Q8_0) cache rows read in place
// against the reference over the same rows widened.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention_flash.h"
#include "quant/quant.h"
#include "support/backends.h"

namespace toy {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

AttentionParams params(int64_t n_head, int64_t n_head_kv, int64_t head_dim) {
  AttentionParams p;
  p.n_head = n_head;
  p.n_head_kv = n_head_kv;
  p.head_dim = head_dim;
  p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  return p;
}

class FlashOn : public ::testing::TestWithParam<const cpu::Backend*> {
 protected:
  // Flash attention over `type` rows (quantized from random values) against the
  // reference over the dequantized rows.
  void check(const AttentionParams& p, int64_t T, int64_t pos0, int n_threads,
             DType type = DType::F32) {
    const int64_t n_kv = pos0 + T, width = p.n_head_kv * p.head_dim;
    const auto q = random_values(static_cast<size_t>(T * p.n_head * p.head_dim), 1, 2.0f);
    auto k = random_values(static_cast<size_t>(n_kv * width), 2, 2.0f);
    auto v = random_values(static_cast<size_t>(n_kv * width), 3);
    const size_t row_bytes = static_cast<size_t>(toy::row_bytes(type, width));
    std::vector<uint8_t> kq(row_bytes * n_kv), vq(row_bytes * n_kv);
    for (int64_t j = 0; j < n_kv; ++j) {
      quant::quantize_row(type, &k[j * width], &kq[j * row_bytes], width);
      quant::quantize_row(type, &v[j * width], &vq[j * row_bytes], width);
      quant::dequantize_row(type, &kq[j * row_bytes], &k[j * width], width);
      quant::dequantize_row(type, &vq[j * row_bytes], &v[j * width], width);
    }
    std::vector<float> ours(q.size(), NAN), ref(q.size());
    ThreadPool pool(n_threads);
    const Compute cx{pool, *GetParam()};
    attention_flash_forward(ours.data(), q.data(), KvRows{kq.data(), type, row_bytes},
                            KvRows{vq.data(), type, row_bytes}, T, pos0, n_kv, p, cx);
    attention_reference(ref.data(), q.data(), k.data(), v.data(), T, pos0, n_kv, p);
    for (size_t i = 0; i < ours.size(); ++i)
      ASSERT_NEAR(ours[i], ref[i], 3e-6)
          << dtype_name(type) << " T=" << T << " pos0=" << pos0 << " at " << i;
  }
};

TEST_P(FlashOn, MultiHeadAndGroupedQuery) {
  check(params(3, 3, 8), 7, 0, 1);
  for (int threads = 1; threads <= 3; ++threads) check(params(4, 2, 16), 9, 0, threads);
  check(params(6, 1, 24), 5, 3, 2);  // multi-query
}

TEST_P(FlashOn, BlocksAndTilesThatDoNotDivideTheSizes) {
  for (int64_t T : {1, 15, 16, 17, 33, 70})
    for (int64_t pos0 : {0, 5, 63, 64, 65}) check(params(4, 2, 32), T, pos0, 2);
}

TEST_P(FlashOn, SlidingWindowAndSoftcap) {
  AttentionParams p = params(4, 2, 32);
  p.window = 20;
  check(p, 48, 80, 2);
  p.window = 3;
  check(p, 40, 0, 3);
  p.window = 0;
  p.softcap = 5.0f;
  check(p, 30, 7, 2);
}

// Few queries over a long cache split the keys of each KV head across threads
// (split-K) and merge the partial softmaxes.
TEST_P(FlashOn, DecodeAtALongContext) {
  check(params(9, 3, 64), 1, 1500, 2);
  check(params(9, 3, 64), 1, 1500, 2, DType::F16);
  check(params(8, 1, 32), 5, 600, 3);  // one block of several queries, split
  AttentionParams p = params(4, 2, 32);
  p.window = 300;
  check(p, 1, 1000, 3);
  check(p, 3, 1000, 2);
  p.window = 0;
  p.softcap = 4.0f;
  check(p, 1, 700, 2, DType::Q8_0);
}

TEST_P(FlashOn, ReadsTypedCacheRowsInPlace) {
  for (DType type : {DType::F16, DType::BF16, DType::Q8_0}) {
    check(params(4, 2, 32), 21, 50, 2, type);
    check(params(8, 2, 64), 1, 200, 1, type);
  }
}

// The first position sees only itself: the output is its own value row.
TEST_P(FlashOn, FirstPositionCopiesValue) {
  const AttentionParams p = params(2, 1, 4);
  const std::vector<float> q = {1, 2, 3, 4, -1, 0, 1, 0}, k = {5, 6, 7, 8}, v = {0.5f, -2, 3, 9};
  std::vector<float> out(8);
  ThreadPool pool(1);
  const Compute cx{pool, *GetParam()};
  attention_flash_forward(out.data(), q.data(), KvRows{k.data(), DType::F32, 16},
                          KvRows{v.data(), DType::F32, 16}, 1, 0, 1, p, cx);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(out[h * 4 + i], v[i]);
}

INSTANTIATE_TEST_SUITE_P(Backends, FlashOn,
                         ::testing::ValuesIn(testing_support::runnable_backends()),
                         testing_support::backend_name);

}  // namespace
}  // namespace toy
