#include "model/forward_pass.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/activations.h"
#include "kernels/gdn_block.h"
#include "kernels/geglu_backward.h"
#include "kernels/moe.h"
#include "kernels/rmsnorm.h"
#include "kernels/rmsnorm_backward.h"
#include "kernels/rope_backward.h"
#include "kernels/softcap_backward.h"
#include "kernels/swiglu_backward.h"
#include "model/taps.h"
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

template <typename Real>
constexpr bool kIsFloat = std::is_same_v<Real, float>;

// The steps of one forward call, in order.
template <typename Real>
class Pass {
 public:
  Pass(const ModelConfig& c, const Weights& w, const BatchShape& shape, ForwardSink<Real>& sink,
       const LinearContext& ctx)
      : c_(c), w_(w), shape_(shape), N_(shape.rows()), sink_(sink), ctx_(ctx) {
    rope_ = rope_params(c_, w_);
    if (decode_rows()) {
      // One position per sequence (a multi-sequence decode step): each row is rotated
      // by rope_forward at its own position, so no table of every position is built.
    } else if (shape_.positions) {
      // Explicit positions (packed rows): a table of every position they use.
      int32_t last = 0;
      for (int64_t r = 0; r < N_; ++r) last = std::max(last, shape_.positions[r]);
      rope_table_ = make_rope_table<Real>(int64_t{last} + 1, rope_);
      positions_.assign(shape_.positions, shape_.positions + N_);
    } else if constexpr (!kIsFloat<Real>) {
      // The double rotation reads a table of every position of the batch.
      rope_table_ = make_rope_table<double>(shape_.pos0 + shape_.n_pos, rope_);
      positions_.resize(static_cast<size_t>(N_));
      for (int64_t r = 0; r < N_; ++r)
        positions_[r] = static_cast<int32_t>(shape_.pos0 + r % shape_.n_pos);
    }
  }

  void embed(std::span<const int32_t> tokens, Real* x) {
    const int64_t E = c_.n_embd;
    // Under a projection lens the rows come from the donor's table (N, D) and the lens maps
    // them into the model's width: x = rows · lens_projᵀ.
    const bool lens = c_.n_embd_lens > 0;
    const int64_t D = lens ? c_.n_embd_lens : E;
    if (lens) lens_rows_.resize(static_cast<size_t>(N_ * D));
    Real* rows = lens ? lens_rows_.data() : x;
    gather_embedding_rows(rows, w_.token_embd, tokens, N_, D, c_.n_vocab);
    if (lens) linear(x, rows, w_.lens_proj, N_, ctx_);
    if (c_.arch().embedding_scale) {
      const Real scale = std::sqrt(static_cast<Real>(E));
      for (int64_t i = 0; i < N_ * E; ++i) x[i] *= scale;
    }
  }

  void attention_block(int64_t il, const LayerTensors<Real>& a) {
    const LayerWeights& l = w_.layers[static_cast<size_t>(il)];
    const int64_t E = c_.n_embd, Q = c_.q_dim(), KV = c_.kv_dim(), d = c_.head_dim;
    norm(a.xn, a.x, l.attn_norm, N_, E);
    linear(a.q, a.xn, l.attn_q, l.attn_q_bias, N_, ctx_);
    linear(a.k, a.xn, l.attn_k, l.attn_k_bias, N_, ctx_);
    linear(a.v, a.xn, l.attn_v, l.attn_v_bias, N_, ctx_);
    switch (c_.arch().qk_norm) {
      case QkNorm::PerHead:
        norm(a.qr, a.q, l.attn_q_norm, N_ * c_.n_head, d);
        norm(a.kr, a.k, l.attn_k_norm, N_ * c_.n_head_kv, d);
        break;
      case QkNorm::FullWidth:
        norm(a.qr, a.q, l.attn_q_norm, N_, Q);
        norm(a.kr, a.k, l.attn_k_norm, N_, KV);
        break;
      case QkNorm::None:
        if (a.qr != a.q) std::copy(a.q, a.q + N_ * Q, a.qr);
        if (a.kr != a.k) std::copy(a.k, a.k + N_ * KV, a.kr);
        break;
    }
    rope(a.qr, c_.n_head);
    rope(a.kr, c_.n_head_kv);
    sink_.attend(il, a.att, a.qr, a.kr, a.v, attention_params(c_, il), ctx_.compute);
    linear(a.attn_out, a.att, l.attn_output, N_, ctx_);
    add(a.x_mid, a.x, post_norm(a.proj, a.attn_out, l.post_attn_norm), N_ * E);
  }

  // A gated delta-net layer in place of attention (Qwen3-Next's linear attention):
  // projections, causal conv + SiLU on q | k | v, the β and decay gates, the delta
  // rule over each sequence's recurrent state, the gated RMSNorm and ssm_out.
  void gdn_block(int64_t il, const LayerTensors<Real>& a) {
    const LayerWeights& l = w_.layers[static_cast<size_t>(il)];
    const GdnConfig& g = c_.gdn;
    const GdnTensors<Real> t = sink_.gdn(il);
    TOY_CHECK(t.qkv, "this forward mode has no gated delta-net buffers");
    const int64_t E = c_.n_embd, C = g.conv_channels(), H = g.n_v_head;
    const int64_t T = shape_.n_pos, K = g.d_conv;
    norm(a.xn, a.x, l.attn_norm, N_, E);
    linear(t.qkv, a.xn, l.attn_qkv, N_, ctx_);
    linear(t.z, a.xn, l.attn_gate, N_, ctx_);
    linear(t.beta, a.xn, l.ssm_beta, N_, ctx_);
    linear(t.alpha, a.xn, l.ssm_alpha, N_, ctx_);
    for (int64_t i = 0; i < N_ * H; ++i) t.beta[i] = Real(1) / (Real(1) + std::exp(-t.beta[i]));
    gdn_decay_forward(t.gate, t.alpha, l.ssm_dt.ptr<const Real>(), l.ssm_a.ptr<const Real>(), N_,
                      H);
    const Real* w_conv = l.ssm_conv1d.ptr<const Real>();  // [K, C]
    const GdnDims one = gdn_dims(c_, 1, T);
    bool carried = false;  // inference: each sequence continues its own state
    for (int64_t s = 0; s < shape_.n_seq; ++s) {
      const GdnState<Real> st = sink_.gdn_state(il, s);
      carried = st.state != nullptr;
      const Real* x = t.qkv + s * T * C;
      Real* pre = t.conv_pre + s * T * C;
      Real* post = t.conv + s * T * C;
      causal_conv_forward(pre, x, st.conv_tail, w_conv, T, C, K);
      if (st.conv_tail) causal_conv_tail(st.conv_tail, x, T, C, K);
      for (int64_t i = 0; i < T * C; ++i) post[i] = pre[i] / (Real(1) + std::exp(-pre[i]));  // SiLU
      if (carried) delta_rule(t, st.state, one, s * T);
    }
    if (!carried) {
      // Training: every sequence starts empty; one call spreads all heads of all of them.
      std::vector<Real> zero(static_cast<size_t>(shape_.n_seq * g.state_floats()), Real(0));
      delta_rule(t, zero.data(), gdn_dims(c_, shape_.n_seq, T), 0);
    }
    gated_rmsnorm_forward(t.normed, t.core, t.z, l.ssm_norm.ptr<const Real>(), N_ * H, g.d_v(),
                          c_.rms_eps);
    linear(a.attn_out, t.normed, l.ssm_out, N_, ctx_);
    add(a.x_mid, a.x, post_norm(a.proj, a.attn_out, l.post_attn_norm), N_ * E);
  }

  void ffn_block(int64_t il, const LayerTensors<Real>& a) {
    const LayerWeights& l = w_.layers[static_cast<size_t>(il)];
    const int64_t E = c_.n_embd;
    norm(a.xn2, a.x_mid, l.ffn_norm, N_, E);
    if (c_.is_moe()) {
      experts(il, l, a);
    } else {
      gated_ffn(a.ffn_out, a.xn2, l.ffn_gate, l.ffn_up, l.ffn_down, N_, a);
    }
    add(a.x_out, a.x_mid, post_norm(a.proj, a.ffn_out, l.post_ffn_norm), N_ * E);
  }

  void output(const OutputTensors<Real>& o) {
    const int64_t E = c_.n_embd;
    const int64_t n = N_ - o.first_row;
    norm(o.xn, &o.x[o.first_row * E], w_.output_norm, n, E);
    linear(o.logits, o.xn, w_.output_matrix(), n, ctx_);
    if (c_.final_softcap > 0.0f) {
      if constexpr (kIsFloat<Real>) {
        softcap(o.logits, n * c_.n_vocab, c_.final_softcap);
      } else {
        softcap_reference(o.logits, n * c_.n_vocab, c_.final_softcap);
      }
    }
  }

 private:
  // Rows that are one position each of their own sequence, at explicit positions.
  bool decode_rows() const { return kIsFloat<Real> && shape_.positions && shape_.n_pos == 1; }

  // The delta rule over rows row0.. of the conv output (q | k | v per row) into core.
  void delta_rule(const GdnTensors<Real>& t, Real* state, const GdnDims& d, int64_t row0) {
    const int64_t C = c_.gdn.conv_channels(), qk = c_.gdn.qk_dim();
    const int64_t H = c_.gdn.n_v_head, D = c_.gdn.d_inner;
    const Real* qkv = t.conv + row0 * C;
    Real* out = t.core + row0 * D;
    const Real* gate = t.gate + row0 * H;
    const Real* beta = t.beta + row0 * H;
    if constexpr (kIsFloat<Real>) {
      float* scratch = t.scratch;
      std::vector<float> own;  // training: sized here for this call's threads
      if (!scratch) {
        own.resize(static_cast<size_t>(gdn_scratch_floats(d, kGdnChunk, ctx_.compute.size())));
        scratch = own.data();
      }
      if (t.chunked) {
        gdn_chunked(out, state, qkv, qkv + qk, qkv + 2 * qk, gate, beta, d, kGdnChunk, scratch,
                    ctx_.compute);
      } else {
        gdn_forward(out, state, qkv, qkv + qk, qkv + 2 * qk, gate, beta, d, scratch, ctx_.compute);
      }
    } else {
      gdn_reference<Real>(out, state, qkv, qkv + qk, qkv + 2 * qk, gate, beta, d);
    }
  }

  // RMSNorm of `rows` rows of n values with an F32 (F64 for double) weight.
  void norm(Real* out, const Real* x, const Tensor& weight, int64_t rows, int64_t n) {
    const Real* wp = weight.ptr<const Real>();
    const float eps = c_.rms_eps;
    if constexpr (kIsFloat<Real>) {
      parallel_rows(ctx_.compute.pool, rows, std::max<int64_t>(1, 16384 / n),
                    [&](int64_t begin, int64_t end) {
                      rmsnorm_forward(out + begin * n, x + begin * n, wp, end - begin, n, eps);
                    });
    } else {
      TOY_CHECK(weight.type == DType::F64, "double forward needs F64 norm weights");
      rmsnorm_reference(out, x, wp, rows, n, eps);
    }
  }

  // The block output the residual add reads: post_norm(in) into out when the
  // layer has that norm (Gemma 2), else `in` itself.
  const Real* post_norm(Real* out, const Real* in, const Tensor& weight) {
    if (!weight.data) return in;
    norm(out, in, weight, N_, c_.n_embd);
    return out;
  }

  // Rotates every head of every row by its position (each sequence from pos0).
  void rope(Real* x, int64_t n_heads) {
    if constexpr (kIsFloat<Real>) {
      if (decode_rows()) {
        const int64_t row = n_heads * c_.head_dim;
        parallel_rows(ctx_.compute.pool, N_, 1, [&](int64_t begin, int64_t end) {
          for (int64_t r = begin; r < end; ++r)
            rope_forward(x + r * row, 1, n_heads, shape_.positions[r], rope_);
        });
        return;
      }
    }
    if (shape_.positions) {
      const int64_t row = n_heads * c_.head_dim;
      parallel_rows(ctx_.compute.pool, N_, 16, [&](int64_t begin, int64_t end) {
        rope_rotate(x + begin * row, positions_.data() + begin, end - begin, n_heads, rope_table_,
                    +1);
      });
      return;
    }
    if constexpr (kIsFloat<Real>) {
      const int64_t T = shape_.n_pos, row = n_heads * c_.head_dim;
      if (shape_.n_seq == 1) {
        rope_forward(x, T, n_heads, shape_.pos0, rope_);
      } else {
        parallel_rows(ctx_.compute.pool, shape_.n_seq, 1, [&](int64_t begin, int64_t end) {
          for (int64_t s = begin; s < end; ++s)
            rope_forward(x + s * T * row, T, n_heads, shape_.pos0, rope_);
        });
      }
    } else {
      rope_rotate(x, positions_.data(), N_, n_heads, rope_table_, +1);
    }
  }

  // out = a + b over n values (out may alias a).
  void add(Real* out, const Real* a, const Real* b, int64_t n) {
    parallel_rows(ctx_.compute.pool, n, 16384, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = a[i] + b[i];
    });
  }

  // out (T, n_embd) = down(act(gate x) * up x) for x (T, n_embd) = rows of `in`,
  // through the layer's gate / up / act tensors.
  void gated_ffn(Real* out, const Real* in, const Tensor& gate, const Tensor& up,
                 const Tensor& down, int64_t T, const LayerTensors<Real>& a) {
    const int64_t F = gate.ne[1];
    linear(a.gate, in, gate, T, ctx_);
    linear(a.up, in, up, T, ctx_);
    const Activation act = c_.arch().ffn_activation;
    Real* h = a.act;
    const Real* g = a.gate;
    const Real* u = a.up;
    if constexpr (kIsFloat<Real>) {
      parallel_rows(ctx_.compute.pool, T, std::max<int64_t>(1, 4096 / F),
                    [&](int64_t b, int64_t e) {
                      // SwiGLU through the backend's vector exp; GELU (Gemma) stays scalar.
                      if (act == Activation::Silu) {
                        ctx_.compute.cpu.swiglu(h + b * F, g + b * F, u + b * F, (e - b) * F);
                      } else {
                        gated_activation(h + b * F, g + b * F, u + b * F, (e - b) * F, act);
                      }
                    });
    } else if (act == Activation::Silu) {
      swiglu_reference(h, g, u, T * F);
    } else {
      geglu_reference(h, g, u, T * F);
    }
    linear(out, h, down, T, ctx_);
  }

  // Mixture of experts: each expert runs once over the positions routed to it.
  // The gate / up / act tensors of `a` are scratch here (each expert overwrites them),
  // so the training backward recomputes an expert's activations from its routed rows.
  void experts(int64_t il, const LayerWeights& l, const LayerTensors<Real>& a) {
    const ExpertBuffers<Real> s = sink_.experts(il);
    TOY_CHECK(s.router, "this forward mode has no mixture-of-experts buffers");
    const int64_t E = c_.n_embd, X = c_.n_expert, K = c_.n_expert_used;
    linear(s.router, a.xn2, l.ffn_gate_inp, N_, ctx_);
    moe_route(s.expert_ids, s.expert_w, s.router, N_, X, K, c_.arch().renormalize_expert_weights);
    Real* sum = a.ffn_out;  // (N, E)
    std::fill(sum, sum + N_ * E, Real(0));
    for (int32_t e = 0; e < X; ++e) {
      int64_t n = 0;
      for (int64_t i = 0; i < N_ * K; ++i) {
        if (s.expert_ids[i] != e) continue;
        s.routed[n] = static_cast<int32_t>(i);
        std::memcpy(&s.gathered[n * E], &a.xn2[(i / K) * E], sizeof(Real) * E);
        ++n;
      }
      if (n == 0) continue;
      gated_ffn(s.expert_out, s.gathered, matrix_slice(l.ffn_gate_exps, e),
                matrix_slice(l.ffn_up_exps, e), matrix_slice(l.ffn_down_exps, e), n, a);
      for (int64_t r = 0; r < n; ++r) {
        const int64_t i = s.routed[r];
        const Real weight = s.expert_w[i];
        Real* dst = &sum[(i / K) * E];
        const Real* src = &s.expert_out[r * E];
        for (int64_t j = 0; j < E; ++j) dst[j] += weight * src[j];
      }
    }
    if (c_.arch().shared_expert) {
      // Qwen2-MoE: sigmoid(ffn_gate_inp_shexp . x) * shared_ffn(x), added to the routed sum.
      gated_ffn(s.expert_out, a.xn2, l.ffn_gate_shexp, l.ffn_up_shexp, l.ffn_down_shexp, N_, a);
      // The gate vector [n_embd] is a one-row matrix, so it goes through linear() too.
      Tensor gate = l.ffn_gate_inp_shexp;
      gate.n_dims = 2;
      linear(s.shared_gate, a.xn2, gate, N_, ctx_);
      for (int64_t t = 0; t < N_; ++t) {
        const Real g = Real(1) / (Real(1) + std::exp(-s.shared_gate[t]));
        for (int64_t j = 0; j < E; ++j) sum[t * E + j] += g * s.expert_out[t * E + j];
      }
    }
  }

  const ModelConfig& c_;
  const Weights& w_;
  BatchShape shape_;
  int64_t N_;
  ForwardSink<Real>& sink_;
  const LinearContext& ctx_;
  RopeParams rope_;
  RopeTable<Real> rope_table_;      // double, or explicit positions
  std::vector<int32_t> positions_;  // (N) position of each row (same cases)
  std::vector<Real> lens_rows_;     // (N, n_embd_lens) donor rows under a projection lens
};

}  // namespace

RopeParams rope_params(const ModelConfig& c, const Weights& w) {
  RopeParams p;
  p.mode = c.rope.mode;
  p.n_rot = c.rope.n_rot;
  p.head_dim = c.head_dim;
  p.freq_base = c.rope.freq_base;
  p.freq_scale = c.rope.freq_scale;
  p.yarn = c.rope.scaling == RopeScaling::Yarn;
  p.beta_fast = c.rope.beta_fast;
  p.beta_slow = c.rope.beta_slow;
  p.n_ctx_orig = c.rope.n_ctx_orig;
  if (w.rope_freqs.data) {
    TOY_CHECK(w.rope_freqs.type == DType::F32 && w.rope_freqs.numel() >= c.rope.n_rot / 2,
              "rope_freqs must be F32 with n_rot/2 values, found ", dtype_name(w.rope_freqs.type),
              " ", w.rope_freqs.shape_string());
    p.freq_factors = w.rope_freqs.ptr<const float>();
  }
  return p;
}

GdnDims gdn_dims(const ModelConfig& c, int64_t n_seq, int64_t n_tok) {
  GdnDims d;
  d.n_seq = n_seq;
  d.n_tok = n_tok;
  d.n_k_head = c.gdn.n_k_head;
  d.n_v_head = c.gdn.n_v_head;
  d.d_k = c.gdn.d_state;
  d.d_v = c.gdn.d_v();
  d.row_stride = c.gdn.conv_channels();
  d.eps = c.rms_eps;  // llama.cpp's qwen3next L2-normalises q and k with the RMS epsilon
  return d;
}

AttentionParams attention_params(const ModelConfig& c, int64_t il) {
  AttentionParams ap;
  ap.n_head = c.n_head;
  ap.n_head_kv = c.n_head_kv;
  ap.head_dim = c.head_dim;
  ap.scale = c.attn_scale;
  ap.softcap = c.attn_softcap;
  ap.window = c.layer_uses_window(il) ? c.sliding_window : 0;
  return ap;
}

template <typename Real>
void gather_embedding_rows(Real* rows, const Tensor& table, std::span<const int32_t> tokens,
                           int64_t n, int64_t width, int64_t n_vocab) {
  for (int64_t t = 0; t < n; ++t) {
    const int32_t id = tokens[static_cast<size_t>(t)];
    if (id < 0 || id >= n_vocab)
      fail("token id ", id, " (at batch index ", t, ") is outside the vocabulary [0, ", n_vocab,
           ")");
    if constexpr (kIsFloat<Real>) {
      quant::dequantize_row(table.type, table.row(id), &rows[t * width], width);
    } else {
      TOY_CHECK(table.type == DType::F64, "double forward needs F64 embeddings");
      std::memcpy(&rows[t * width], table.row(id), sizeof(double) * width);
    }
  }
}

template void gather_embedding_rows<float>(float*, const Tensor&, std::span<const int32_t>, int64_t,
                                           int64_t, int64_t);
template void gather_embedding_rows<double>(double*, const Tensor&, std::span<const int32_t>,
                                            int64_t, int64_t, int64_t);

template <typename Real>
void run_forward(const ModelConfig& config, const Weights& weights, std::span<const int32_t> tokens,
                 const BatchShape& shape, ForwardSink<Real>& sink, const LinearContext& ctx) {
  TOY_CHECK(shape.n_seq > 0 && shape.n_pos > 0 && shape.pos0 >= 0 &&
                static_cast<int64_t>(tokens.size()) == shape.rows(),
            "batch of ", tokens.size(), " tokens for ", shape.n_seq, " x ", shape.n_pos);
  Pass<Real> pass(config, weights, shape, sink, ctx);
  const OutputTensors<Real> out = sink.output();
  pass.embed(tokens, config.n_layer > 0 ? sink.layer(0).x : out.x);
  for (int64_t il = 0; il < config.n_layer; ++il) {
    const LayerTensors<Real> a = sink.layer(il);
    // The one place a layer's kind is dispatched.
    switch (config.layer_kind(il)) {
      case LayerKind::Attention:
        pass.attention_block(il, a);
        break;
      case LayerKind::GatedDeltaNet:
        pass.gdn_block(il, a);
        break;
    }
    if constexpr (kIsFloat<Real>)
      if (sink.taps) sink.taps->after_attention(il, a, shape.rows(), config.n_embd);
    pass.ffn_block(il, a);
    if constexpr (kIsFloat<Real>)
      if (sink.taps) sink.taps->after_ffn(il, a, shape.rows(), config.n_embd);
  }
  pass.output(out);
}

template void run_forward<float>(const ModelConfig&, const Weights&, std::span<const int32_t>,
                                 const BatchShape&, ForwardSink<float>&, const LinearContext&);
template void run_forward<double>(const ModelConfig&, const Weights&, std::span<const int32_t>,
                                  const BatchShape&, ForwardSink<double>&, const LinearContext&);

}  // namespace toy
