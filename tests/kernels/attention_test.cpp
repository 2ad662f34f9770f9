// attention_forward against the double-precision reference: GQA, multi-query,
// sliding window, softcap, a batch that continues a history, odd sizes, 1-3 threads.
#include <gtest/gtest.h>

#include "kernels/compute.h"
#include "kernels/cpu/features.h"

#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace toy {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void check(const AttentionParams& p, int64_t T, int64_t pos0, int n_threads) {
  const int64_t n_kv = pos0 + T;
  const auto q = random_values(static_cast<size_t>(T * p.n_head * p.head_dim), 1, 2.0f);
  const auto k = random_values(static_cast<size_t>(n_kv * p.n_head_kv * p.head_dim), 2, 2.0f);
  const auto v = random_values(static_cast<size_t>(n_kv * p.n_head_kv * p.head_dim), 3);
  std::vector<float> ours(q.size()), ref(q.size());
  ThreadPool pool(n_threads);
  const Compute cx{pool, cpu::host_backend()};
  std::vector<float> scores(static_cast<size_t>(attention_scratch_floats(n_threads, n_kv, p)));
  attention_forward(ours.data(), q.data(), k.data(), v.data(), T, pos0, n_kv, p, scores.data(), cx);
  attention_reference(ref.data(), q.data(), k.data(), v.data(), T, pos0, n_kv, p);
  for (size_t i = 0; i < ours.size(); ++i) ASSERT_NEAR(ours[i], ref[i], 2e-6) << "at " << i;
}

int64_t row_bytes_of(DType type, int64_t n) {
  return row_bytes(type, n);
}

AttentionParams params(int64_t n_head, int64_t n_head_kv, int64_t head_dim) {
  AttentionParams p;
  p.n_head = n_head;
  p.n_head_kv = n_head_kv;
  p.head_dim = head_dim;
  p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  return p;
}

TEST(Attention, MultiHead) {
  check(params(3, 3, 8), 7, 0, 1);
}

TEST(Attention, GroupedQuery) {
  for (int threads = 1; threads <= 3; ++threads) check(params(4, 2, 16), 9, 0, threads);
}

TEST(Attention, MultiQuery) {
  check(params(5, 1, 12), 6, 0, 2);
}

TEST(Attention, ContinuesHistory) {
  check(params(4, 2, 8), 3, 10, 2);  // a batch after 10 cached positions
  check(params(4, 2, 8), 1, 20, 3);  // decode
}

TEST(Attention, SlidingWindow) {
  AttentionParams p = params(4, 2, 8);
  p.window = 4;
  check(p, 13, 0, 2);
  check(p, 1, 12, 1);
}

TEST(Attention, Softcap) {
  AttentionParams p = params(2, 1, 16);
  p.softcap = 5.0f;
  p.scale = 2.0f;  // large scores, so the cap matters
  check(p, 8, 3, 2);
}

// Enough work per call that the pool's threads take part.
TEST(Attention, LargeBatchAcrossThreads) {
  AttentionParams p = params(4, 2, 64);
  check(p, 48, 80, 3);
  p.window = 20;
  check(p, 48, 80, 2);
}

// Typed cache rows read in place give the same result as attention over the
// same rows widened to F32 beforehand.
TEST(Attention, ReadsF16AndQ8RowsDirectly) {
  const AttentionParams p = params(4, 2, 32);
  const int64_t T = 5, pos0 = 6, n_kv = 11, width = 64;
  const auto q = random_values(static_cast<size_t>(T * 128), 4, 2.0f);
  const auto k = random_values(static_cast<size_t>(n_kv * width), 5, 2.0f);
  const auto v = random_values(static_cast<size_t>(n_kv * width), 6);
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  std::vector<float> scores(static_cast<size_t>(attention_scratch_floats(2, n_kv, p)));
  for (DType type : {DType::F16, DType::Q8_0}) {
    ASSERT_TRUE(attention_reads_directly(type, 32));
    const size_t row_bytes = static_cast<size_t>(row_bytes_of(type, width));
    std::vector<uint8_t> kq(row_bytes * n_kv), vq(row_bytes * n_kv);
    std::vector<float> kw(k.size()), vw(v.size());
    for (int64_t j = 0; j < n_kv; ++j) {
      quant::quantize_row(type, &k[j * width], &kq[j * row_bytes], width);
      quant::quantize_row(type, &v[j * width], &vq[j * row_bytes], width);
      quant::dequantize_row(type, &kq[j * row_bytes], &kw[j * width], width);
      quant::dequantize_row(type, &vq[j * row_bytes], &vw[j * width], width);
    }
    std::vector<float> direct(q.size()), widened(q.size());
    attention_forward(direct.data(), q.data(), KvRows{kq.data(), type, row_bytes},
                      KvRows{vq.data(), type, row_bytes}, T, pos0, n_kv, p, scores.data(), cx);
    attention_forward(widened.data(), q.data(), kw.data(), vw.data(), T, pos0, n_kv, p,
                      scores.data(), cx);
    for (size_t i = 0; i < direct.size(); ++i) ASSERT_FLOAT_EQ(direct[i], widened[i]) << i;
  }
  EXPECT_FALSE(attention_reads_directly(DType::Q8_0, 16));  // half a block per head
}

// The first position sees only itself: the output is its own value row.
TEST(Attention, FirstPositionCopiesValue) {
  const AttentionParams p = params(2, 1, 4);
  const std::vector<float> q = {1, 2, 3, 4, -1, 0, 1, 0}, k = {5, 6, 7, 8}, v = {0.5f, -2, 3, 9};
  std::vector<float> out(8), scores(static_cast<size_t>(attention_scratch_floats(1, 1, p)));
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  attention_forward(out.data(), q.data(), k.data(), v.data(), 1, 0, 1, p, scores.data(), cx);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(out[h * 4 + i], v[i]);
}

}  // namespace
}  // namespace toy
