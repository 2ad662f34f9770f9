#include "kernels/attention_flash.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "quant/quant.h"

namespace toy {
namespace {

constexpr int64_t kQueryBlock = 16;  // positions per block of queries
constexpr int64_t kKeyTile = 64;     // keys per tile
// Split-K decode only pays when each chunk still has a few tiles of keys.
constexpr int64_t kSplitMinKeys = 256;

// Working tiles of one thread (grown on first use, then reused).
struct FlashTiles {
  std::vector<float> q;        // (rows, d) scaled queries of the block
  std::vector<float> s;        // (rows, kKeyTile) scores, then probabilities
  std::vector<float> o;        // (rows, d) running output
  std::vector<float> pv;       // (rows, d) P·V of one tile
  std::vector<float> k;        // (kKeyTile, d) dequantized keys (Q8_0 cache)
  std::vector<float> vt;       // (d, kKeyTile) values of the tile, transposed
  std::vector<float> max;      // (rows) running max
  std::vector<float> sum;      // (rows) running sum of exp
  std::vector<float> widened;  // (d) one value row widened
  void size(int64_t rows, int64_t d) {
    auto grow = [](std::vector<float>& v, int64_t n) {
      if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
    };
    grow(q, rows * d);
    grow(s, rows * kKeyTile);
    grow(o, rows * d);
    grow(pv, rows * d);
    grow(k, kKeyTile * d);
    grow(vt, d * kKeyTile);
    grow(max, rows);
    grow(sum, rows);
    grow(widened, d);
  }
};

FlashTiles& thread_tiles() {
  static thread_local FlashTiles tiles;
  return tiles;
}

FloatWeight float_kind(DType type) {
  return type == DType::F16 ? FloatWeight::F16
                            : (type == DType::BF16 ? FloatWeight::BF16 : FloatWeight::F32);
}

struct FlashJob {
  float* out;
  const float* q;
  KvRows k, v;
  int64_t T, pos0;
  const AttentionParams* p;
  const cpu::Backend* cpu;
  int64_t n_items;   // (query block, KV head) pairs, block-major
  int64_t n_chunks;  // key chunks per KV head in split-K mode (1: off)
  float* partials;   // (n_head_kv, n_chunks, rows, head_dim + 2) in split-K mode

  void run_item(int64_t item) const {
    const int64_t b = item / p->n_head_kv, g = item % p->n_head_kv;
    const int64_t t0 = b * kQueryBlock;
    const int64_t t1 = std::min(T, t0 + kQueryBlock);
    run_block(t0, t1, g, first_visible_key(pos0 + t0, p->window), pos0 + t1, nullptr);
  }

  // Split-K (decode: one block, few KV heads): KV head g over the keys of chunk c
  // into partials; merge() combines them.
  void run_chunk(int64_t g, int64_t c) const {
    const int64_t lo = first_visible_key(pos0, p->window), hi = pos0 + T;
    const int64_t per = (hi - lo + n_chunks - 1) / n_chunks;
    const int64_t j0 = std::min(hi, lo + c * per), j1 = std::min(hi, j0 + per);
    run_block(0, T, g, j0, j1, partial_at(g, c));
  }

  // Partial results of one (KV head, key chunk): rows of (max, sum, O unnormalised).
  float* partial_at(int64_t g, int64_t c) const {
    const int64_t rows = T * (p->n_head / p->n_head_kv);
    return partials + (g * n_chunks + c) * rows * (p->head_dim + 2);
  }

  // out = (Σ_c O_c e^(m_c − M)) / (Σ_c l_c e^(m_c − M)), M = max_c m_c, per row.
  void merge() const {
    const int64_t d = p->head_dim, group = p->n_head / p->n_head_kv, rows = T * group;
    for (int64_t g = 0; g < p->n_head_kv; ++g)
      for (int64_t r = 0; r < rows; ++r) {
        float m = -INFINITY;
        for (int64_t c = 0; c < n_chunks; ++c) m = std::max(m, partial_at(g, c)[r * (d + 2)]);
        float* dst = out + (r / group) * p->n_head * d + (g * group + r % group) * d;
        std::fill(dst, dst + d, 0.0f);
        float sum = 0.0f;
        for (int64_t c = 0; c < n_chunks; ++c) {
          const float* part = partial_at(g, c) + r * (d + 2);
          if (part[0] == -INFINITY) continue;  // no visible key in this chunk
          const float f = std::exp(part[0] - m);
          sum += part[1] * f;
          for (int64_t i = 0; i < d; ++i) dst[i] += part[2 + i] * f;
        }
        const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
        for (int64_t i = 0; i < d; ++i) dst[i] *= inv;
      }
  }

  // Query positions [t0, t1) with the query heads of KV head g, over keys
  // [j_begin, j_end); into `out`, or unnormalised into `partial` when given.
  void run_block(int64_t t0, int64_t t1, int64_t g, int64_t j_begin, int64_t j_end,
                 float* partial) const {
    const int64_t d = p->head_dim, group = p->n_head / p->n_head_kv;
    const int64_t q_stride = p->n_head * d, rows = (t1 - t0) * group;
    FlashTiles& w = thread_tiles();
    w.size(rows, d);
    // Row r = (t - t0) * group + head-in-group; the scale is folded into Q.
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t h = 0; h < group; ++h) {
        const float* src = q + t * q_stride + (g * group + h) * d;
        float* dst = &w.q[((t - t0) * group + h) * d];
        for (int64_t i = 0; i < d; ++i) dst[i] = src[i] * p->scale;
      }
    std::fill(w.o.begin(), w.o.begin() + rows * d, 0.0f);
    std::fill(w.max.begin(), w.max.begin() + rows, -INFINITY);
    std::fill(w.sum.begin(), w.sum.begin() + rows, 0.0f);

    const bool in_place = k.type == DType::F32 || k.type == DType::F16 || k.type == DType::BF16;
    for (int64_t j0 = j_begin; j0 < j_end; j0 += kKeyTile) {
      const int64_t nk = std::min(kKeyTile, j_end - j0);
      // S (rows, nk) = Q · Kᵀ, K read in place when the backend's GEMM can widen it.
      if (in_place) {
        const uint8_t* k0 = static_cast<const uint8_t*>(k.data) + j0 * k.row_bytes +
                            g * d * dtype_info(k.type).type_size;
        cpu->gemm_float(w.s.data(), kKeyTile, w.q.data(), d, rows, k0, k.row_bytes,
                        float_kind(k.type), nk, d);
      } else {
        for (int64_t j = 0; j < nk; ++j) {  // never F32 here: cached_head widens into the tile
          const float* row = cached_head(*cpu, k, j0 + j, g * d, d, &w.k[j * d]);
          if (row != &w.k[j * d]) std::memcpy(&w.k[j * d], row, sizeof(float) * d);
        }
        cpu->gemm_float(w.s.data(), kKeyTile, w.q.data(), d, rows, w.k.data(), d * sizeof(float),
                        FloatWeight::F32, nk, d);
      }
      // Vᵀ (d, nk) for the P·V product.
      for (int64_t j = 0; j < nk; ++j) {
        const float* row = cached_head(*cpu, v, j0 + j, g * d, d, w.widened.data());
        for (int64_t i = 0; i < d; ++i) w.vt[i * kKeyTile + j] = row[i];
      }
      bool any = false;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t pos = pos0 + t0 + r / group;
        // Visible keys of this row within the tile: [lo, hi).
        const int64_t lo = std::clamp<int64_t>(first_visible_key(pos, p->window) - j0, 0, nk);
        const int64_t hi = std::clamp<int64_t>(pos + 1 - j0, 0, nk);
        float* s = &w.s[r * kKeyTile];
        if (lo >= hi) {
          std::fill(s, s + nk, 0.0f);
          continue;
        }
        any = true;
        if (p->softcap > 0.0f)
          for (int64_t j = lo; j < hi; ++j) s[j] = p->softcap * std::tanh(s[j] / p->softcap);
        float m = w.max[r];
        for (int64_t j = lo; j < hi; ++j) m = std::max(m, s[j]);
        const float alpha = w.max[r] == -INFINITY ? 0.0f : std::exp(w.max[r] - m);
        cpu->exp_shifted(s + lo, s + lo, m, hi - lo);
        std::fill(s, s + lo, 0.0f);
        std::fill(s + hi, s + nk, 0.0f);
        float tile_sum = 0.0f;
        for (int64_t j = lo; j < hi; ++j) tile_sum += s[j];
        w.sum[r] = w.sum[r] * alpha + tile_sum;
        w.max[r] = m;
        if (alpha != 1.0f) {
          float* o = &w.o[r * d];
          for (int64_t i = 0; i < d; ++i) o[i] *= alpha;
        }
      }
      if (!any) continue;
      // O += P · V: rows of P against the d rows of Vᵀ.
      cpu->gemm_float(w.pv.data(), d, w.s.data(), kKeyTile, rows, w.vt.data(),
                      kKeyTile * sizeof(float), FloatWeight::F32, d, nk);
      for (int64_t i = 0; i < rows * d; ++i) w.o[i] += w.pv[i];
    }
    if (partial) {
      for (int64_t r = 0; r < rows; ++r) {
        float* part = partial + r * (d + 2);
        part[0] = w.max[r];
        part[1] = w.sum[r];
        std::copy(&w.o[r * d], &w.o[r * d] + d, part + 2);
      }
      return;
    }
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t h = 0; h < group; ++h) {
        const int64_t r = (t - t0) * group + h;
        const float inv = w.sum[r] > 0.0f ? 1.0f / w.sum[r] : 0.0f;
        float* dst = out + t * q_stride + (g * group + h) * d;
        for (int64_t i = 0; i < d; ++i) dst[i] = w.o[r * d + i] * inv;
      }
  }
};

}  // namespace

void attention_flash_forward(float* out, const float* q, const KvRows& k, const KvRows& v,
                             int64_t T, int64_t pos0, int64_t n_kv, const AttentionParams& p,
                             const Compute& cx) {
  TOY_CHECK(p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0, "heads ", p.n_head, "/", p.n_head_kv);
  TOY_CHECK(
      attention_reads_directly(k.type, p.head_dim) && attention_reads_directly(v.type, p.head_dim),
      "attention cannot read ", dtype_name(k.type), "/", dtype_name(v.type), " rows of head_dim ",
      p.head_dim);
  TOY_CHECK(pos0 + T <= n_kv, "queries reach position ", pos0 + T, " past ", n_kv, " keys");
  const int64_t blocks = (T + kQueryBlock - 1) / kQueryBlock;
  const int64_t n_items = blocks * p.n_head_kv;
  // Few items (decode): split each KV head's keys into chunks, one per thread and
  // head, so every thread streams its share of a long cache; partials are merged.
  const int64_t visible = pos0 + T - first_visible_key(pos0, p.window);
  const bool split =
      blocks == 1 && cx.size() > 1 && n_items < 2 * cx.size() && visible >= kSplitMinKeys;
  int64_t n_chunks = 1;
  float* partials = nullptr;
  if (split) {
    n_chunks = std::min<int64_t>((2 * cx.size() + p.n_head_kv - 1) / p.n_head_kv,
                                 visible / (kSplitMinKeys / 2));
    static thread_local std::vector<float> shared;  // the calling thread's, reused
    const size_t need = static_cast<size_t>(p.n_head_kv * n_chunks * T * (p.n_head / p.n_head_kv) *
                                            (p.head_dim + 2));
    if (shared.size() < need) shared.resize(need);
    partials = shared.data();
  }
  const FlashJob job{out, q, k, v, T, pos0, &p, &cx.cpu, n_items, n_chunks, partials};
  const FlashJob* jp = &job;  // one pointer captured: std::function does not allocate
  if (split) {
    cx.run([jp](int thread, int n_threads) {
      const int64_t tasks = jp->p->n_head_kv * jp->n_chunks;
      for (int64_t task = thread; task < tasks; task += n_threads)
        jp->run_chunk(task / jp->n_chunks, task % jp->n_chunks);
    });
    job.merge();
    return;
  }
  if (n_items == 1 || cx.size() == 1) {
    for (int64_t item = 0; item < n_items; ++item) job.run_item(item);
    return;
  }
  // Later blocks see more keys: deal the items out round-robin for balance.
  cx.run([jp](int thread, int n_threads) {
    for (int64_t item = thread; item < jp->n_items; item += n_threads) jp->run_item(item);
  });
}

}  // namespace toy
