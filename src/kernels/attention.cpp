#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/activations.h"

namespace toy {
namespace {

// The visible keys of a query at position `pos` are [first, pos].
int64_t first_visible(int64_t pos, int64_t window) {
  return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

void attend_one(float* out, const float* q, const float* k, const float* v, int64_t pos,
                int64_t kv_head, const AttentionParams& p, float* scores) {
  const int64_t d = p.head_dim, kv_stride = p.n_head_kv * p.head_dim;
  const int64_t first = first_visible(pos, p.window);
  const int64_t n = pos + 1 - first;
  for (int64_t j = 0; j < n; ++j) {
    const float* kj = k + (first + j) * kv_stride + kv_head * d;
    float dot = 0.0f;
    for (int64_t i = 0; i < d; ++i) dot += q[i] * kj[i];
    scores[j] = dot * p.scale;
  }
  if (p.softcap > 0.0f) softcap(scores, n, p.softcap);
  softmax(scores, n);
  std::fill(out, out + d, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const float* vj = v + (first + j) * kv_stride + kv_head * d;
    const float w = scores[j];
    for (int64_t i = 0; i < d; ++i) out[i] += w * vj[i];
  }
}

}  // namespace

void attention_forward(float* out, const float* q, const float* k, const float* v, int64_t T,
                       int64_t pos0, int64_t n_kv, const AttentionParams& p, float* scores,
                       ThreadPool& pool) {
  TOY_CHECK(p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0, "heads ", p.n_head, "/", p.n_head_kv);
  TOY_CHECK(pos0 + T <= n_kv, "queries reach position ", pos0 + T, " past ", n_kv, " keys");
  const int64_t group = p.n_head / p.n_head_kv;
  const int64_t q_stride = p.n_head * p.head_dim;
  const int64_t n_items = T * p.n_head;
  pool.run([&](int thread, int n_threads) {
    float* my_scores = scores + static_cast<int64_t>(thread) * n_kv;
    const int64_t begin = n_items * thread / n_threads, end = n_items * (thread + 1) / n_threads;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / p.n_head, h = item % p.n_head;
      attend_one(out + t * q_stride + h * p.head_dim, q + t * q_stride + h * p.head_dim, k, v,
                 pos0 + t, h / group, p, my_scores);
    }
  });
}

void attention_reference(float* out, const float* q, const float* k, const float* v, int64_t T,
                         int64_t pos0, int64_t n_kv, const AttentionParams& p) {
  const int64_t d = p.head_dim, group = p.n_head / p.n_head_kv;
  const int64_t q_stride = p.n_head * d, kv_stride = p.n_head_kv * d;
  std::vector<double> s(static_cast<size_t>(n_kv));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pos = pos0 + t;
    for (int64_t h = 0; h < p.n_head; ++h) {
      const float* qh = q + t * q_stride + h * d;
      const int64_t kvh = h / group;
      double max = -INFINITY;
      for (int64_t j = 0; j < n_kv; ++j) {
        const bool visible = j <= pos && (p.window <= 0 || pos - j < p.window);
        if (!visible) {
          s[j] = -INFINITY;
          continue;
        }
        double dot = 0.0;
        for (int64_t i = 0; i < d; ++i)
          dot += double(qh[i]) * double(k[j * kv_stride + kvh * d + i]);
        dot *= p.scale;
        if (p.softcap > 0.0f) dot = p.softcap * std::tanh(dot / p.softcap);
        s[j] = dot;
        max = std::max(max, dot);
      }
      double sum = 0.0;
      for (int64_t j = 0; j < n_kv; ++j) {
        s[j] = std::isinf(s[j]) ? 0.0 : std::exp(s[j] - max);
        sum += s[j];
      }
      for (int64_t i = 0; i < d; ++i) {
        double acc = 0.0;
        for (int64_t j = 0; j < n_kv; ++j) acc += s[j] * double(v[j * kv_stride + kvh * d + i]);
        out[t * q_stride + h * d + i] = static_cast<float>(acc / sum);
      }
    }
  }
}

}  // namespace toy
