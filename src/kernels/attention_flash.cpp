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

// Head `offset` (elements) of row j widened to F32 into dst (n values).
void widen_head(const cpu::Backend& cpu, const KvRows& rows, int64_t j, int64_t offset, int64_t n,
                float* dst) {
  const uint8_t* row =
      static_cast<const uint8_t*>(rows.data) + static_cast<size_t>(j) * rows.row_bytes;
  switch (rows.type) {
    case DType::F32:
      std::memcpy(dst, reinterpret_cast<const float*>(row) + offset, sizeof(float) * n);
      return;
    case DType::F16:
      cpu.f16_to_f32_row(dst, reinterpret_cast<const uint16_t*>(row) + offset, n);
      return;
    case DType::BF16:
      cpu.widen_rows(dst, reinterpret_cast<const uint16_t*>(row) + offset, 0, FloatWeight::BF16, 1,
                     n);
      return;
    default:  // whole blocks (attention_reads_directly)
      quant::dequantize_row(rows.type, row + static_cast<size_t>(toy::row_bytes(rows.type, offset)),
                            dst, n);
  }
}

// The visible keys of a query at position pos: [first, pos].
int64_t first_visible(int64_t pos, int64_t window) {
  return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

struct FlashJob {
  float* out;
  const float* q;
  KvRows k, v;
  int64_t T, pos0;
  const AttentionParams* p;
  const cpu::Backend* cpu;
  int64_t n_items;  // (query block, KV head) pairs, block-major

  void run_item(int64_t item) const {
    const int64_t b = item / p->n_head_kv, g = item % p->n_head_kv;
    const int64_t t0 = b * kQueryBlock;
    run_block(t0, std::min(T, t0 + kQueryBlock), g);
  }

  // Query positions [t0, t1) with the query heads of KV head g.
  void run_block(int64_t t0, int64_t t1, int64_t g) const {
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

    const int64_t j_begin = first_visible(pos0 + t0, p->window), j_end = pos0 + t1;
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
        for (int64_t j = 0; j < nk; ++j) widen_head(*cpu, k, j0 + j, g * d, d, &w.k[j * d]);
        cpu->gemm_float(w.s.data(), kKeyTile, w.q.data(), d, rows, w.k.data(), d * sizeof(float),
                        FloatWeight::F32, nk, d);
      }
      // Vᵀ (d, nk) for the P·V product.
      for (int64_t j = 0; j < nk; ++j) {
        widen_head(*cpu, v, j0 + j, g * d, d, w.widened.data());
        for (int64_t i = 0; i < d; ++i) w.vt[i * kKeyTile + j] = w.widened[i];
      }
      bool any = false;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t pos = pos0 + t0 + r / group;
        // Visible keys of this row within the tile: [lo, hi).
        const int64_t lo = std::clamp<int64_t>(first_visible(pos, p->window) - j0, 0, nk);
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
  const FlashJob job{out, q, k, v, T, pos0, &p, &cx.cpu, n_items};
  if (n_items == 1 || cx.size() == 1) {
    for (int64_t item = 0; item < n_items; ++item) job.run_item(item);
    return;
  }
  // Later blocks see more keys: deal the items out round-robin for balance. One
  // pointer captured, so std::function does not allocate.
  const FlashJob* jp = &job;
  cx.run([jp](int thread, int n_threads) {
    for (int64_t item = thread; item < jp->n_items; item += n_threads) jp->run_item(item);
  });
}

}  // namespace toy
