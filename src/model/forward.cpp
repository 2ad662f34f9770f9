#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/attention_flash.h"
#include "model/forward_pass.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace toy {

namespace {

// pool.parallel_for without allocating: the std::function holds one pointer to the
// caller's lambda, which fits its small-object buffer (a lambda capturing several
// references would be heap-allocated on every call).
template <typename Fn>
void parallel_rows(ThreadPool& pool, int64_t n, int64_t grain, const Fn& fn) {
  pool.parallel_for(
      n, [&fn](int64_t begin, int64_t end) { fn(begin, end); }, grain);
}

}  // namespace

ForwardScratch::ForwardScratch(const ModelConfig& c, int64_t max_tokens, int64_t n_ctx,
                               DType kv_type, int n_threads)
    : max_tokens_(max_tokens) {
  TOY_CHECK(max_tokens > 0 && n_ctx > 0 && n_threads > 0, "scratch sizes");
  auto sized = [](auto& v, int64_t n) { v.assign(static_cast<size_t>(n), {}); };
  const int64_t T = max_tokens;
  const int64_t ff = std::max({c.n_ff, c.is_moe() ? c.n_ff_exp : 0, c.n_ff_shexp});
  sized(x, T * c.n_embd);
  sized(xn, T * c.n_embd);
  sized(q, T * c.q_dim());
  sized(k, T * c.kv_dim());
  sized(v, T * c.v_dim());
  sized(att, T * c.q_dim());
  sized(proj, T * c.n_embd);
  sized(gate, T * ff);
  sized(up, T * ff);
  if (!attention_reads_directly(kv_type, c.head_dim)) {
    sized(k_f32, n_ctx * c.kv_dim());
    sized(v_f32, n_ctx * c.v_dim());
  }
  AttentionParams heads;
  heads.n_head = c.n_head;
  heads.n_head_kv = c.n_head_kv;
  sized(scores, attention_scratch_floats(n_threads, n_ctx, heads));
  if (c.is_moe()) {
    sized(router, T * c.n_expert);
    sized(expert_ids, T * c.n_expert_used);
    sized(expert_w, T * c.n_expert_used);
    sized(routed, T * c.n_expert_used);
    sized(gathered, T * c.n_embd);
    sized(expert_out, T * c.n_embd);
    sized(shared_gate, T);
  }
  row_pos.assign(static_cast<size_t>(T), 0);
  if (c.has_gdn_layers()) {
    const GdnConfig& g = c.gdn;
    sized(gdn_qkv, T * g.conv_channels());
    sized(gdn_conv, T * g.conv_channels());
    sized(gdn_z, T * g.d_inner);
    sized(gdn_beta, T * g.n_v_head);
    sized(gdn_alpha, T * g.n_v_head);
    sized(gdn_gate, T * g.n_v_head);
    sized(gdn_core, T * g.d_inner);
    sized(gdn_scratch, gdn_scratch_floats(gdn_dims(c, 1, T), kGdnChunk, n_threads));
  }
}

int64_t cache_context_length(std::span<const KvLayer> cache) {
  for (const KvLayer& l : cache)
    if (l.k.data) return l.k.ne[1];
  return std::numeric_limits<int64_t>::max();
}

// Inference mode of the one forward (model/forward_pass.h): the layer tensors
// alias the scratch buffers, and attention appends the batch's K/V rows to the
// cache and attends over every cached position. With `sequences` (a
// multi-sequence decode step) row r is one token of its own sequence instead:
// it goes to, and attends over, sequences[r].cache at sequences[r].pos.
class KvCacheSink final : public ForwardSink<float> {
 public:
  KvCacheSink(const ModelConfig& c, ForwardScratch& s, std::span<const KvLayer> cache, int64_t T,
              int64_t pos0, LogitRows rows, float* logits,
              std::span<const SequenceRow> sequences = {})
      : c_(c),
        s_(s),
        cache_(cache),
        T_(T),
        pos0_(pos0),
        rows_(rows),
        logits_(logits),
        sequences_(sequences) {
    taps = s.taps;
  }

  LayerTensors<float> layer(int64_t) override {
    float* x = s_.x.data();
    float* xn = s_.xn.data();
    float* q = s_.q.data();
    float* k = s_.k.data();
    float* gate = s_.gate.data();
    return {.x = x,
            .xn = xn,
            .q = q,
            .k = k,
            .v = s_.v.data(),
            .qr = q,
            .kr = k,
            .att = s_.att.data(),
            .attn_out = s_.proj.data(),
            .ffn_out = s_.proj.data(),
            .proj = s_.proj.data(),
            .x_mid = x,
            .xn2 = xn,
            .gate = gate,
            .up = s_.up.data(),
            .act = gate,
            .x_out = x};
  }

  OutputTensors<float> output() override {
    return {s_.x.data(), s_.xn.data(), logits_, rows_ == LogitRows::Last ? T_ - 1 : 0};
  }

  void attend(int64_t il, float* att, const float* q, const float* k, const float* v,
              const AttentionParams& p, const Compute& cx) override {
    if (!sequences_.empty()) {
      // One query per sequence, each over its own cache: T calls of one row.
      for (int64_t r = 0; r < T_; ++r) {
        const SequenceRow& row = sequences_[static_cast<size_t>(r)];
        attend_rows(row.cache[static_cast<size_t>(il)], att + r * c_.q_dim(), q + r * c_.q_dim(),
                    k + r * c_.kv_dim(), v + r * c_.v_dim(), 1, row.pos, p, cx);
      }
      return;
    }
    attend_rows(cache_[static_cast<size_t>(il)], att, q, k, v, T_, pos0_, p, cx);
  }

  GdnTensors<float> gdn(int64_t) override {
    return {.qkv = s_.gdn_qkv.data(),
            .conv_pre = s_.gdn_conv.data(),
            .conv = s_.gdn_conv.data(),
            .z = s_.gdn_z.data(),
            .beta = s_.gdn_beta.data(),
            .alpha = s_.gdn_alpha.data(),
            .gate = s_.gdn_gate.data(),
            .core = s_.gdn_core.data(),
            .normed = s_.gdn_core.data(),
            .scratch = s_.gdn_scratch.data(),
            .chunked = s_.chunked_delta_rule};
  }

  // The state after the sequence's earlier positions; a sequence at position 0
  // starts from zeros (what reset and truncate(0) rely on).
  GdnState<float> gdn_state(int64_t il, int64_t seq) override {
    const bool rows = !sequences_.empty();
    const KvLayer& kv = rows ? sequences_[static_cast<size_t>(seq)].cache[static_cast<size_t>(il)]
                             : cache_[static_cast<size_t>(il)];
    const int64_t pos = rows ? sequences_[static_cast<size_t>(seq)].pos : pos0_;
    float* state = kv.state.ptr<float>();
    float* conv = kv.conv.ptr<float>();
    TOY_CHECK(state && conv, "layer ", il, " has no recurrent state in the cache");
    if (pos == 0) {
      std::fill(state, state + kv.state.numel(), 0.0f);
      std::fill(conv, conv + kv.conv.numel(), 0.0f);
    }
    return {state, conv};
  }

  ExpertBuffers<float> experts(int64_t) override {
    return {s_.router.data(),   s_.expert_ids.data(), s_.expert_w.data(),   s_.routed.data(),
            s_.gathered.data(), s_.expert_out.data(), s_.shared_gate.data()};
  }

 private:
  // Auto: the tiled kernel, measured faster at every context length and batch size
  // (bench/attention_bench.sh: prompt batches read each K/V row once per block of
  // queries; single-token decode splits a long cache's keys across threads).
  bool use_flash_attention() const { return s_.attention != AttentionKernel::Plain; }

  // Appends n query rows' K/V (at positions pos0..pos0+n-1) to one layer's cache
  // and attends them over cache rows [0, pos0 + n).
  void attend_rows(const KvLayer& kv, float* att, const float* q, const float* k, const float* v,
                   int64_t n, int64_t pos0, const AttentionParams& p, const Compute& cx) {
    store_rows(kv.k, k, c_.kv_dim(), n, pos0);
    store_rows(kv.v, v, c_.v_dim(), n, pos0);
    const int64_t n_kv = pos0 + n;
    const KvRows keys = attention_rows(kv.k, s_.k_f32, n_kv, c_.kv_dim(), cx);
    const KvRows values = attention_rows(kv.v, s_.v_f32, n_kv, c_.v_dim(), cx);
    if (use_flash_attention()) {
      attention_flash_forward(att, q, keys, values, n, pos0, n_kv, p, cx);
    } else {
      attention_forward(att, q, keys, values, n, pos0, n_kv, p, s_.scores.data(), cx);
    }
  }

  // Writes n rows (n, width) into cache rows pos0.. in the cache's type.
  void store_rows(const Tensor& cache, const float* rows, int64_t width, int64_t n, int64_t pos0) {
    for (int64_t t = 0; t < n; ++t) {
      const float* src = rows + t * width;
      uint8_t* dst = const_cast<uint8_t*>(cache.row(pos0 + t));
      if (cache.type == DType::F32) {
        std::memcpy(dst, src, sizeof(float) * width);
      } else if (cache.type == DType::F16) {
        uint16_t* h = reinterpret_cast<uint16_t*>(dst);
        for (int64_t i = 0; i < width; ++i) h[i] = quant::f32_to_f16(src[i]);
      } else {
        quant::quantize_row(cache.type, src, dst, width);
      }
    }
  }

  // Cache rows [0, n) as attention reads them: the cache itself when it can (F32, F16,
  // Q8_0 with whole-block heads), else an F32 staged copy.
  KvRows attention_rows(const Tensor& cache, std::vector<float>& staged, int64_t n, int64_t width,
                        const Compute& cx) {
    if (attention_reads_directly(cache.type, c_.head_dim))
      return {cache.data, cache.type, cache.nb[1]};
    float* out = staged.data();
    parallel_rows(cx.pool, n, std::max<int64_t>(1, 16384 / width), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        quant::dequantize_row(cache.type, cache.row(p), out + p * width, width);
    });
    return {out, DType::F32, static_cast<size_t>(width) * sizeof(float)};
  }

  const ModelConfig& c_;
  ForwardScratch& s_;
  std::span<const KvLayer> cache_;
  int64_t T_, pos0_;
  LogitRows rows_;
  float* logits_;
  std::span<const SequenceRow> sequences_;
};

void forward(const Model& model, std::span<const int32_t> tokens, int64_t pos0,
             std::span<const KvLayer> cache, ForwardScratch& scratch, LogitRows rows, float* logits,
             const LinearContext& ctx) {
  const ModelConfig& c = model.config;
  const int64_t T = static_cast<int64_t>(tokens.size());
  TOY_CHECK(T > 0 && T <= scratch.max_tokens(), "batch of ", T, " tokens, scratch holds ",
            scratch.max_tokens());
  TOY_CHECK(static_cast<int64_t>(cache.size()) == c.n_layer, "cache has ", cache.size(), " layers");
  const int64_t n_ctx = cache_context_length(cache);
  if (pos0 < 0 || pos0 + T > n_ctx)
    fail("context full: positions ", pos0, "..", pos0 + T - 1, " do not fit a context of ", n_ctx,
         " tokens (raise it with -c, up to the model's ", c.n_ctx_train, ")");
  KvCacheSink sink(c, scratch, cache, T, pos0, rows, logits);
  run_forward<float>(c, model.weights, tokens, BatchShape{1, T, pos0}, sink, ctx);
}

void forward_rows(const Model& model, std::span<const int32_t> tokens,
                  std::span<const SequenceRow> rows, ForwardScratch& scratch, float* logits,
                  const LinearContext& ctx) {
  const ModelConfig& c = model.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  TOY_CHECK(n > 0 && n <= scratch.max_tokens() && rows.size() == tokens.size(), "step of ", n,
            " tokens and ", rows.size(), " rows, scratch holds ", scratch.max_tokens());
  for (int64_t r = 0; r < n; ++r) {
    const SequenceRow& row = rows[static_cast<size_t>(r)];
    TOY_CHECK(static_cast<int64_t>(row.cache.size()) == c.n_layer, "cache has ", row.cache.size(),
              " layers");
    const int64_t n_ctx = cache_context_length(row.cache);
    if (row.pos < 0 || row.pos >= n_ctx)
      fail("context full: position ", row.pos, " (row ", r, ") does not fit a context of ", n_ctx,
           " tokens");
    scratch.row_pos[static_cast<size_t>(r)] = static_cast<int32_t>(row.pos);
  }
  KvCacheSink sink(c, scratch, {}, n, 0, LogitRows::All, logits, rows);
  // n sequences of one position each, every row at its own position.
  BatchShape shape{n, 1, 0, scratch.row_pos.data()};
  run_forward<float>(c, model.weights, tokens, shape, sink, ctx);
}

}  // namespace toy
