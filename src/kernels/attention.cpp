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

// Dot product and y += a·x with 16 independent partial sums / lanes, so the
// compiler vectorizes them without reassociating a single sum (no -ffast-math).
float dot(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 16;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += a[i + l] * b[i + l];
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (int l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void attend_one(float* out, const float* q, const float* k, const float* v, int64_t pos,
                int64_t kv_head, const AttentionParams& p, float* scores) {
  const int64_t d = p.head_dim, kv_stride = p.n_head_kv * p.head_dim;
  const int64_t first = first_visible(pos, p.window);
  const int64_t n = pos + 1 - first;
  for (int64_t j = 0; j < n; ++j)
    scores[j] = dot(q, k + (first + j) * kv_stride + kv_head * d, d) * p.scale;
  if (p.softcap > 0.0f) softcap(scores, n, p.softcap);
  softmax(scores, n);
  std::fill(out, out + d, 0.0f);
  for (int64_t j = 0; j < n; ++j)
    axpy(out, scores[j], v + (first + j) * kv_stride + kv_head * d, d);
}

// The arguments of one attention_forward call, shared by the threads.
struct AttentionJob {
  float* out;
  const float *q, *k, *v;
  int64_t pos0, n_kv, n_items;
  int used;  // threads taking part
  const AttentionParams* p;
  float* scores;

  // Items [begin, end) of the (position, head) pairs, in position-major order.
  void run(int64_t begin, int64_t end, float* my_scores) const {
    const int64_t group = p->n_head / p->n_head_kv, q_stride = p->n_head * p->head_dim;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / p->n_head, h = item % p->n_head;
      const int64_t offset = t * q_stride + h * p->head_dim;
      attend_one(out + offset, q + offset, k, v, pos0 + t, h / group, *p, my_scores);
    }
  }
};

}  // namespace

void attention_forward(float* out, const float* q, const float* k, const float* v, int64_t T,
                       int64_t pos0, int64_t n_kv, const AttentionParams& p, float* scores,
                       ThreadPool& pool) {
  TOY_CHECK(p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0, "heads ", p.n_head, "/", p.n_head_kv);
  TOY_CHECK(pos0 + T <= n_kv, "queries reach position ", pos0 + T, " past ", n_kv, " keys");
  const int64_t n_items = T * p.n_head;
  // Each (position, head) item costs ~4·n_kv·head_dim flops; small calls (decode of
  // a short context) stay on the calling thread rather than waking the pool.
  const int64_t per_item = std::max<int64_t>(1, 4 * n_kv * p.head_dim);
  const int64_t min_items = std::max<int64_t>(1, (int64_t{1} << 16) / per_item);
  const int used =
      static_cast<int>(std::min<int64_t>(pool.size(), (n_items + min_items - 1) / min_items));
  const AttentionJob job{out, q, k, v, pos0, n_kv, n_items, used, &p, scores};
  if (used <= 1) {
    job.run(0, n_items, scores);
    return;
  }
  // One pointer captured: fits std::function's small buffer, so nothing is allocated.
  const AttentionJob* jp = &job;
  pool.run([jp](int thread, int) {
    if (thread >= jp->used) return;
    const int64_t begin = jp->n_items * thread / jp->used;
    const int64_t end = jp->n_items * (thread + 1) / jp->used;
    jp->run(begin, end, jp->scores + static_cast<int64_t>(thread) * jp->n_kv);
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
