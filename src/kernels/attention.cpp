#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/activations.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace toy {
namespace {

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

// Query heads kv_head*group .. +group of one position, which all read KV head
// `kv_head`: each key and value row is widened once for the whole group.
// q, out: the group's heads (group*head_dim, contiguous); scores: (group, n_kv).
void attend_group(const cpu::Backend& cpu, float* out, const float* q, const KvRows& k,
                  const KvRows& v, int64_t pos, int64_t kv_head, int64_t group, int64_t n_kv,
                  const AttentionParams& p, float* scores) {
  const int64_t d = p.head_dim, offset = kv_head * d;
  const int64_t first = first_visible_key(pos, p.window);
  const int64_t n = pos + 1 - first;
  float tmp[kMaxAttentionHeadDim];
  for (int64_t j = 0; j < n; ++j) {
    const float* kj = cached_head(cpu, k, first + j, offset, d, tmp);
    for (int64_t g = 0; g < group; ++g) scores[g * n_kv + j] = dot(q + g * d, kj, d) * p.scale;
  }
  for (int64_t g = 0; g < group; ++g) {
    if (p.softcap > 0.0f) softcap(scores + g * n_kv, n, p.softcap);
    softmax(scores + g * n_kv, n);
  }
  std::fill(out, out + group * d, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const float* vj = cached_head(cpu, v, first + j, offset, d, tmp);
    for (int64_t g = 0; g < group; ++g) axpy(out + g * d, scores[g * n_kv + j], vj, d);
  }
}

// The arguments of one attention_forward call, shared by the threads.
struct AttentionJob {
  const cpu::Backend* cpu;
  float* out;
  const float* q;
  KvRows k, v;
  int64_t pos0, n_kv, n_items;
  int used;  // threads taking part
  const AttentionParams* p;
  float* scores;

  // Items [begin, end) of the (position, KV head) pairs, in position-major order.
  void run(int64_t begin, int64_t end, float* my_scores) const {
    const int64_t group = p->n_head / p->n_head_kv, q_stride = p->n_head * p->head_dim;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / p->n_head_kv, kv_head = item % p->n_head_kv;
      const int64_t offset = t * q_stride + kv_head * group * p->head_dim;
      attend_group(*cpu, out + offset, q + offset, k, v, pos0 + t, kv_head, group, n_kv, *p,
                   my_scores);
    }
  }
};

}  // namespace

int64_t first_visible_key(int64_t pos, int64_t window) {
  return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

const float* cached_head(const cpu::Backend& cpu, const KvRows& rows, int64_t j, int64_t offset,
                         int64_t n, float* tmp) {
  const uint8_t* row =
      static_cast<const uint8_t*>(rows.data) + static_cast<size_t>(j) * rows.row_bytes;
  switch (rows.type) {
    case DType::F32:
      return reinterpret_cast<const float*>(row) + offset;
    case DType::F16:
      cpu.f16_to_f32_row(tmp, reinterpret_cast<const uint16_t*>(row) + offset, n);
      return tmp;
    case DType::BF16:
      cpu.widen_rows(tmp, reinterpret_cast<const uint16_t*>(row) + offset, 0, FloatWeight::BF16, 1,
                     n);
      return tmp;
    default:  // whole blocks (checked by attention_reads_directly)
      quant::dequantize_row(rows.type, row + static_cast<size_t>(toy::row_bytes(rows.type, offset)),
                            tmp, n);
      return tmp;
  }
}

int64_t attention_scratch_floats(int n_threads, int64_t n_kv, const AttentionParams& p) {
  return static_cast<int64_t>(n_threads) * n_kv * (p.n_head / p.n_head_kv);
}

bool attention_reads_directly(DType type, int64_t head_dim) {
  if (head_dim > kMaxAttentionHeadDim) return false;
  if (type == DType::F32 || type == DType::F16) return true;
  return quant::can_dequantize(type) && head_dim % dtype_info(type).block_size == 0;
}

void attention_forward(float* out, const float* q, const float* k, const float* v, int64_t T,
                       int64_t pos0, int64_t n_kv, const AttentionParams& p, float* scores,
                       const Compute& cx) {
  const size_t row_bytes = static_cast<size_t>(p.n_head_kv * p.head_dim) * sizeof(float);
  attention_forward(out, q, KvRows{k, DType::F32, row_bytes}, KvRows{v, DType::F32, row_bytes}, T,
                    pos0, n_kv, p, scores, cx);
}

void attention_forward(float* out, const float* q, const KvRows& k, const KvRows& v, int64_t T,
                       int64_t pos0, int64_t n_kv, const AttentionParams& p, float* scores,
                       const Compute& cx) {
  TOY_CHECK(p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0, "heads ", p.n_head, "/", p.n_head_kv);
  TOY_CHECK(
      attention_reads_directly(k.type, p.head_dim) && attention_reads_directly(v.type, p.head_dim),
      "attention cannot read ", dtype_name(k.type), "/", dtype_name(v.type), " rows of head_dim ",
      p.head_dim);
  TOY_CHECK(pos0 + T <= n_kv, "queries reach position ", pos0 + T, " past ", n_kv, " keys");
  const int64_t n_items = T * p.n_head_kv;
  // Each (position, KV head) item costs ~4·n_kv·head_dim flops per query head; small calls
  // (decode of a short context) stay on the calling thread rather than waking the pool.
  const int64_t per_item = std::max<int64_t>(1, 4 * n_kv * p.head_dim * (p.n_head / p.n_head_kv));
  const int64_t min_items = std::max<int64_t>(1, (int64_t{1} << 16) / per_item);
  const int used =
      static_cast<int>(std::min<int64_t>(cx.size(), (n_items + min_items - 1) / min_items));
  const AttentionJob job{&cx.cpu, out, q, k, v, pos0, n_kv, n_items, used, &p, scores};
  if (used <= 1) {
    job.run(0, n_items, scores);
    return;
  }
  // One pointer captured: fits std::function's small buffer, so nothing is allocated.
  const AttentionJob* jp = &job;
  cx.run([jp](int thread, int) {
    if (thread >= jp->used) return;
    const int64_t begin = jp->n_items * thread / jp->used;
    const int64_t end = jp->n_items * (thread + 1) / jp->used;
    jp->run(
        begin, end,
        jp->scores + static_cast<int64_t>(thread) * jp->n_kv * (jp->p->n_head / jp->p->n_head_kv));
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
