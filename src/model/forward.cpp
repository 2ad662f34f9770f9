#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/attention_flash.h"
#include "kernels/moe.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
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
}

// One call of forward(): the steps of the pass over one batch, in order.
class ForwardPass {
 public:
  ForwardPass(const Model& model, ForwardScratch& s, const LinearContext& ctx, int64_t T,
              int64_t pos0)
      : m_(model), c_(model.config), w_(model.weights), s_(s), ctx_(ctx), T_(T), pos0_(pos0) {}

  void embed(std::span<const int32_t> tokens) {
    const int64_t E = c_.n_embd;
    const Tensor& table = w_.token_embd;  // [n_embd, n_vocab]
    for (int64_t t = 0; t < T_; ++t) {
      const int32_t id = tokens[static_cast<size_t>(t)];
      if (id < 0 || id >= c_.n_vocab)
        fail("token id ", id, " (at batch index ", t, ") is outside the vocabulary [0, ",
             c_.n_vocab, ")");
      quant::dequantize_row(table.type, table.row(id), &s_.x[t * E], E);
    }
    if (c_.arch().embedding_scale) {
      const float scale = std::sqrt(static_cast<float>(E));
      for (int64_t i = 0; i < T_ * E; ++i) s_.x[i] *= scale;
    }
  }

  void attention_block(int64_t il, const KvLayer& kv) {
    const LayerWeights& l = w_.layers[static_cast<size_t>(il)];
    const int64_t E = c_.n_embd, Q = c_.q_dim(), KV = c_.kv_dim(), d = c_.head_dim;
    norm(s_.xn.data(), s_.x.data(), l.attn_norm, T_, E);
    linear(s_.q.data(), s_.xn.data(), l.attn_q, l.attn_q_bias, T_, ctx_);
    linear(s_.k.data(), s_.xn.data(), l.attn_k, l.attn_k_bias, T_, ctx_);
    linear(s_.v.data(), s_.xn.data(), l.attn_v, l.attn_v_bias, T_, ctx_);
    switch (c_.arch().qk_norm) {
      case QkNorm::PerHead:
        norm(s_.q.data(), s_.q.data(), l.attn_q_norm, T_ * c_.n_head, d);
        norm(s_.k.data(), s_.k.data(), l.attn_k_norm, T_ * c_.n_head_kv, d);
        break;
      case QkNorm::FullWidth:
        norm(s_.q.data(), s_.q.data(), l.attn_q_norm, T_, Q);
        norm(s_.k.data(), s_.k.data(), l.attn_k_norm, T_, KV);
        break;
      case QkNorm::None:
        break;
    }
    const RopeParams rope = rope_params();
    rope_forward(s_.q.data(), T_, c_.n_head, pos0_, rope);
    rope_forward(s_.k.data(), T_, c_.n_head_kv, pos0_, rope);

    store_rows(kv.k, s_.k.data(), KV);
    store_rows(kv.v, s_.v.data(), c_.v_dim());
    const int64_t n_kv = pos0_ + T_;
    const KvRows keys = attention_rows(kv.k, s_.k_f32, n_kv, KV);
    const KvRows values = attention_rows(kv.v, s_.v_f32, n_kv, c_.v_dim());

    AttentionParams ap;
    ap.n_head = c_.n_head;
    ap.n_head_kv = c_.n_head_kv;
    ap.head_dim = d;
    ap.scale = c_.attn_scale;
    ap.softcap = c_.attn_softcap;
    ap.window = c_.layer_uses_window(il) ? c_.sliding_window : 0;
    if (use_flash_attention()) {
      attention_flash_forward(s_.att.data(), s_.q.data(), keys, values, T_, pos0_, n_kv, ap,
                              ctx_.compute);
    } else {
      attention_forward(s_.att.data(), s_.q.data(), keys, values, T_, pos0_, n_kv, ap,
                        s_.scores.data(), ctx_.compute);
    }

    linear(s_.proj.data(), s_.att.data(), l.attn_output, T_, ctx_);
    if (l.post_attn_norm.data) norm(s_.proj.data(), s_.proj.data(), l.post_attn_norm, T_, E);
    add_residual();
  }

  void ffn_block(int64_t il) {
    const LayerWeights& l = w_.layers[static_cast<size_t>(il)];
    const int64_t E = c_.n_embd;
    norm(s_.xn.data(), s_.x.data(), l.ffn_norm, T_, E);
    if (c_.is_moe()) {
      experts(l);
    } else {
      gated_ffn(s_.proj.data(), s_.xn.data(), l.ffn_gate, l.ffn_up, l.ffn_down, T_);
    }
    if (l.post_ffn_norm.data) norm(s_.proj.data(), s_.proj.data(), l.post_ffn_norm, T_, E);
    add_residual();
  }

  void output(LogitRows rows, float* logits) {
    const int64_t E = c_.n_embd;
    const int64_t first = rows == LogitRows::Last ? T_ - 1 : 0;
    const int64_t n = T_ - first;
    norm(s_.xn.data(), &s_.x[first * E], w_.output_norm, n, E);
    linear(logits, s_.xn.data(), w_.output_matrix(), n, ctx_);
    if (c_.final_softcap > 0.0f) softcap(logits, n * c_.n_vocab, c_.final_softcap);
  }

 private:
  // Auto: the tiled kernel for batches (it reads each K/V row once per block of
  // queries instead of once per query), the plain one for single-token decode,
  // where both read every row once and the plain kernel has less overhead.
  bool use_flash_attention() const {
    switch (s_.attention) {
      case AttentionKernel::Flash:
        return true;
      case AttentionKernel::Plain:
        return false;
      case AttentionKernel::Auto:
        break;
    }
    return T_ > 1;
  }

  RopeParams rope_params() const {
    RopeParams p;
    p.mode = c_.rope.mode;
    p.n_rot = c_.rope.n_rot;
    p.head_dim = c_.head_dim;
    p.freq_base = c_.rope.freq_base;
    p.freq_scale = c_.rope.freq_scale;
    p.yarn = c_.rope.scaling == RopeScaling::Yarn;
    p.beta_fast = c_.rope.beta_fast;
    p.beta_slow = c_.rope.beta_slow;
    p.n_ctx_orig = c_.rope.n_ctx_orig;
    p.freq_factors = w_.rope_freqs.data ? w_.rope_freqs.ptr<const float>() : nullptr;
    return p;
  }

  // RMSNorm of `rows` rows of n floats with an F32 weight, rows split over the pool.
  void norm(float* out, const float* x, const Tensor& weight, int64_t rows, int64_t n) {
    const float* wp = weight.ptr<const float>();
    const float eps = c_.rms_eps;
    parallel_rows(ctx_.compute.pool, rows, std::max<int64_t>(1, 16384 / n),
                  [&](int64_t begin, int64_t end) {
                    rmsnorm_forward(out + begin * n, x + begin * n, wp, end - begin, n, eps);
                  });
  }

  void add_residual() {
    const int64_t n = T_ * c_.n_embd;
    for (int64_t i = 0; i < n; ++i) s_.x[i] += s_.proj[i];
  }

  // out (T, n_embd) = down(act(gate x) * up x) for x (T, n_embd) = rows of `in`.
  void gated_ffn(float* out, const float* in, const Tensor& gate, const Tensor& up,
                 const Tensor& down, int64_t T) {
    const int64_t F = gate.ne[1];
    linear(s_.gate.data(), in, gate, T, ctx_);
    linear(s_.up.data(), in, up, T, ctx_);
    const Activation act = c_.arch().ffn_activation;
    float* g = s_.gate.data();
    const float* u = s_.up.data();
    parallel_rows(ctx_.compute.pool, T, std::max<int64_t>(1, 4096 / F), [&](int64_t b, int64_t e) {
      gated_activation(g + b * F, g + b * F, u + b * F, (e - b) * F, act);
    });
    linear(out, g, down, T, ctx_);
  }

  // Mixture of experts: each expert runs once over the positions routed to it.
  void experts(const LayerWeights& l) {
    const int64_t E = c_.n_embd, X = c_.n_expert, K = c_.n_expert_used;
    linear(s_.router.data(), s_.xn.data(), l.ffn_gate_inp, T_, ctx_);
    moe_route(s_.expert_ids.data(), s_.expert_w.data(), s_.router.data(), T_, X, K,
              c_.arch().renormalize_expert_weights);
    std::fill(s_.proj.begin(), s_.proj.begin() + T_ * E, 0.0f);
    for (int32_t e = 0; e < X; ++e) {
      int64_t n = 0;
      for (int64_t i = 0; i < T_ * K; ++i) {
        if (s_.expert_ids[i] != e) continue;
        s_.routed[n] = static_cast<int32_t>(i);
        std::memcpy(&s_.gathered[n * E], &s_.xn[(i / K) * E], sizeof(float) * E);
        ++n;
      }
      if (n == 0) continue;
      gated_ffn(s_.expert_out.data(), s_.gathered.data(), matrix_slice(l.ffn_gate_exps, e),
                matrix_slice(l.ffn_up_exps, e), matrix_slice(l.ffn_down_exps, e), n);
      for (int64_t r = 0; r < n; ++r) {
        const int64_t i = s_.routed[r];
        const float weight = s_.expert_w[i];
        float* dst = &s_.proj[(i / K) * E];
        const float* src = &s_.expert_out[r * E];
        for (int64_t j = 0; j < E; ++j) dst[j] += weight * src[j];
      }
    }
    if (c_.arch().shared_expert) {
      // Qwen2-MoE: sigmoid(ffn_gate_inp_shexp . x) * shared_ffn(x), added to the routed sum.
      gated_ffn(s_.expert_out.data(), s_.xn.data(), l.ffn_gate_shexp, l.ffn_up_shexp,
                l.ffn_down_shexp, T_);
      // The gate vector [n_embd] is a one-row matrix, so it goes through linear() too.
      Tensor gate = l.ffn_gate_inp_shexp;
      gate.n_dims = 2;
      linear(s_.shared_gate.data(), s_.xn.data(), gate, T_, ctx_);
      for (int64_t t = 0; t < T_; ++t) {
        const float g = 1.0f / (1.0f + std::exp(-s_.shared_gate[t]));
        for (int64_t j = 0; j < E; ++j) s_.proj[t * E + j] += g * s_.expert_out[t * E + j];
      }
    }
  }

  // Writes the batch's rows (T, width) into cache rows pos0.. in the cache's type.
  void store_rows(const Tensor& cache, const float* rows, int64_t width) {
    for (int64_t t = 0; t < T_; ++t) {
      const float* src = rows + t * width;
      uint8_t* dst = const_cast<uint8_t*>(cache.row(pos0_ + t));
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
  KvRows attention_rows(const Tensor& cache, std::vector<float>& staged, int64_t n, int64_t width) {
    if (attention_reads_directly(cache.type, c_.head_dim))
      return {cache.data, cache.type, cache.nb[1]};
    float* out = staged.data();
    parallel_rows(ctx_.compute.pool, n, std::max<int64_t>(1, 16384 / width),
                  [&](int64_t begin, int64_t end) {
                    for (int64_t p = begin; p < end; ++p)
                      quant::dequantize_row(cache.type, cache.row(p), out + p * width, width);
                  });
    return {out, DType::F32, static_cast<size_t>(width) * sizeof(float)};
  }

  const Model& m_;
  const ModelConfig& c_;
  const Weights& w_;
  ForwardScratch& s_;
  const LinearContext& ctx_;
  int64_t T_, pos0_;
};

void forward(const Model& model, std::span<const int32_t> tokens, int64_t pos0,
             std::span<const KvLayer> cache, ForwardScratch& scratch, LogitRows rows, float* logits,
             const LinearContext& ctx) {
  const ModelConfig& c = model.config;
  const int64_t T = static_cast<int64_t>(tokens.size());
  TOY_CHECK(T > 0 && T <= scratch.max_tokens(), "batch of ", T, " tokens, scratch holds ",
            scratch.max_tokens());
  TOY_CHECK(static_cast<int64_t>(cache.size()) == c.n_layer, "cache has ", cache.size(), " layers");
  const int64_t n_ctx = cache[0].k.ne[1];
  if (pos0 < 0 || pos0 + T > n_ctx)
    fail("context full: positions ", pos0, "..", pos0 + T - 1, " do not fit a context of ", n_ctx,
         " tokens (raise it with -c, up to the model's ", c.n_ctx_train, ")");
  ForwardPass pass(model, scratch, ctx, T, pos0);
  pass.embed(tokens);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    pass.attention_block(il, cache[static_cast<size_t>(il)]);
    pass.ffn_block(il);
  }
  pass.output(rows, logits);
}

}  // namespace toy
