#include "train/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/error.h"
#include "kernels/activations.h"
#include "kernels/attention_backward.h"
#include "kernels/embedding_backward.h"
#include "kernels/geglu_backward.h"
#include "kernels/rmsnorm_backward.h"
#include "kernels/softcap_backward.h"
#include "kernels/swiglu_backward.h"
#include "model/forward_pass.h"
#include "model/linear.h"

namespace toy::train {
namespace {

template <typename Real>
const Real* data_of(const Tensor& t) {
  return t.data ? static_cast<const Real*>(t.data) : nullptr;
}
template <typename Real>
Real* grad_of(const Tensor& t) {
  return t.data ? static_cast<Real*>(t.data) : nullptr;
}

template <typename Real>
void zero(Real* p, int64_t n) {
  std::memset(p, 0, static_cast<size_t>(n) * sizeof(Real));
}

// Elementwise work over n items split across the threads (chunks of >= 4096 items).
void parallel_elements(const Compute& cx, int64_t n,
                       const std::function<void(int64_t, int64_t)>& fn) {
  cx.parallel_for(n, fn, 4096);
}

// rmsnorm_backward over rows split across the threads. Each block of kNormChunk rows
// accumulates its own partial dw, and the partials are summed in block order, so
// the result does not depend on the thread count.
constexpr int64_t kNormChunk = 64;

template <typename Real>
void norm_backward(Real* dx, Real* dw, const Real* dout, const Real* x, const Real* w, int64_t rows,
                   int64_t n, float eps, const Compute& cx, std::vector<Real>& partial) {
  const int64_t chunks = (rows + kNormChunk - 1) / kNormChunk;
  partial.assign(static_cast<size_t>(chunks * n), Real(0));
  cx.parallel_for(chunks, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t r0 = c * kNormChunk, r1 = std::min(rows, r0 + kNormChunk);
      rmsnorm_backward(dx + r0 * n, partial.data() + c * n, dout + r0 * n, x + r0 * n, w, r1 - r0,
                       n, eps);
    }
  });
  if (!dw) return;
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t i = 0; i < n; ++i) dw[i] += partial[c * n + i];
}

// The stage of gradient_stages whose backward step finishes tensor `name`'s gradient.
int64_t stage_of(const std::string& name, int64_t n_layer) {
  if (name.starts_with("blk.")) {
    const size_t dot = name.find('.', 4);
    TOY_CHECK(dot != std::string::npos && dot > 4, "layer tensor name ", name);
    return std::stoll(name.substr(4, dot - 4));
  }
  // The head's matrix and its LoRA adapters (.lora_a / .lora_b), and the final norm. A tied
  // output is token_embd, which the embedding backward adds to last.
  for (std::string_view head : {"output.weight", "output_norm.weight"})
    if (name == head || (name.starts_with(head) && name[head.size()] == '.')) return n_layer;
  return n_layer + 1;
}

}  // namespace

template <typename Real>
std::vector<std::vector<ElementRange>> gradient_stages(const ParamStore<Real>& store) {
  const int64_t n_layer = store.config().n_layer;
  std::vector<std::vector<ElementRange>> stages(size_t(n_layer + 2));
  const std::vector<ParamTensor>& tensors = store.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t stage = stage_of(tensors[i].spec.name, n_layer);
    TOY_CHECK(stage >= 0 && stage <= n_layer + 1, "tensor ", tensors[i].spec.name);
    const int64_t begin = tensors[i].offset;
    const int64_t end = i + 1 < tensors.size() ? tensors[i + 1].offset : store.total();
    std::vector<ElementRange>& ranges = stages[size_t(stage)];
    if (!ranges.empty() && ranges.back().second == begin) {
      ranges.back().second = end;
    } else {
      ranges.push_back({begin, end});
    }
  }
  return stages;
}

const ModelConfig& trainable(const ModelConfig& config) {
  check_trainable(config);
  return config;
}

void check_trainable(const ModelConfig& c) {
  if (c.is_moe() && (c.n_expert_used <= 0 || c.n_expert_used > c.n_expert || c.n_ff_exp <= 0))
    fail(c.source, ": a mixture of experts with ", c.n_expert, " experts, ", c.n_expert_used,
         " used and expert_feed_forward_length ", c.n_ff_exp, " cannot be trained");
  if (c.head_dim_v != c.head_dim)
    fail(c.source, ": training needs attention.value_length == key_length, found ", c.head_dim_v,
         " and ", c.head_dim);
}

template <typename Real>
TrainModel<Real>::TrainModel(ParamStore<Real>& store, int64_t n_seq, int64_t n_pos)
    : store_(store),
      grads_(store.grad_weights()),
      lora_(store.lora_over(store.grads())),
      c_(store.config()),
      B_(n_seq),
      T_(n_pos),
      BT_(n_seq * n_pos),
      acts_(trainable(store.config()), n_seq, n_pos) {
  if (c_.is_moe()) {
    moe_ = std::make_unique<MoeBackward<Real>>(c_, n_seq * n_pos);
  }
  if (c_.has_gdn_layers()) gdn_ = std::make_unique<GdnBackward<Real>>(c_, n_seq, n_pos);
  // The dense FFN's gradient scratch (a MoE layer's lives in moe_).
  const int64_t E = c_.n_embd, Q = c_.q_dim(), KV = c_.kv_dim(), V = c_.n_vocab;
  const int64_t F = c_.is_moe() ? 0 : c_.n_ff;
  const int64_t BT = BT_;
  positions_.resize(static_cast<size_t>(BT));
  for (int64_t r = 0; r < BT; ++r) positions_[r] = static_cast<int32_t>(r % T_);

  // The gradient scratch in one arena (each take rounded up to 64 bytes).
  const int64_t floats = 2 * BT * E + 3 * BT * Q + 3 * BT * KV + 3 * BT * F + BT * V;
  arena_.reserve(static_cast<size_t>(floats) * sizeof(Real) + 12 * 64);
  auto take = [&](int64_t n) { return arena_.take_array<Real>(static_cast<size_t>(n)); };
  d_x_ = take(BT * E);
  d_norm_ = take(BT * E);
  d_q_ = take(BT * Q);
  d_k_ = take(BT * KV);
  d_v_ = take(BT * KV);
  d_qr_ = take(BT * Q);
  d_kr_ = take(BT * KV);
  d_att_ = take(BT * Q);
  d_gate_ = take(BT * F);
  d_up_ = take(BT * F);
  d_act_ = take(BT * F);
  d_logits_ = take(BT * V);
}

template <typename Real>
void TrainModel<Real>::set_gradients(Real* grads) {
  grads_ = store_.views_over(grads);
  lora_ = store_.lora_over(grads);
}

template <typename Real>
void TrainModel<Real>::rope_backward(Real* dx, int64_t n_heads, const Compute& cx) {
  const int64_t row = n_heads * c_.head_dim;
  cx.parallel_for(
      BT_,
      [&](int64_t begin, int64_t end) {
        rope_rotate(dx + begin * row, positions_.data() + begin, end - begin, n_heads, rope_table_,
                    -1);
      },
      16);
}

template <typename Real>
CrossEntropyResult TrainModel<Real>::forward(const int32_t* tokens, const int32_t* targets,
                                             const Compute& cx) {
  return forward(tokens, targets, nullptr, nullptr, cx);
}

template <typename Real>
CrossEntropyResult TrainModel<Real>::forward(const int32_t* tokens, const int32_t* targets,
                                             const int32_t* positions, const int32_t* segment,
                                             const Compute& cx) {
  tokens_.assign(tokens, tokens + BT_);
  targets_.assign(targets, targets + BT_);
  if (positions) {
    positions_.assign(positions, positions + BT_);
  } else {
    for (int64_t r = 0; r < BT_; ++r) positions_[r] = static_cast<int32_t>(r % T_);
  }
  if (segment) {
    segment_.assign(segment, segment + BT_);
  } else {
    segment_.clear();
  }
  // The rotation the forward applies (rope_params of the same weights), for rope_backward.
  int32_t last = static_cast<int32_t>(T_ - 1);
  for (int32_t p : positions_) last = std::max(last, p);
  rope_table_ = make_rope_table<Real>(int64_t{last} + 1, rope_params(c_, store_.weights()));
  forward_train<Real>(c_, store_.weights(), tokens, acts_, context(cx),
                      positions ? positions_.data() : nullptr,
                      segment_.empty() ? nullptr : segment_.data());
  // The exponentials stay in d_logits_ for backward(), which then only scales them.
  row_sums_.resize(static_cast<size_t>(BT_));
  return cross_entropy_forward(acts_.logits(), targets, BT_, c_.n_vocab, cx,
                               SavedSoftmax<Real>{d_logits_, row_sums_.data()});
}

template <typename Real>
void TrainModel<Real>::backward(double grad_scale, const Compute& cx) {
  const Weights& w = store_.weights();
  Weights& g = grads_;
  const LinearContext ctx = context(cx);
  const int64_t E = c_.n_embd, V = c_.n_vocab;
  cross_entropy_backward_saved(SavedSoftmax<Real>{d_logits_, row_sums_.data()}, targets_.data(),
                               BT_, V, grad_scale, cx);
  // logits = c·tanh(raw/c) (Gemma 2): the saved logits are the capped ones.
  if (c_.final_softcap > 0.0f)
    parallel_elements(cx, BT_ * V, [&](int64_t begin, int64_t end) {
      softcap_backward(d_logits_ + begin, acts_.logits() + begin, end - begin, c_.final_softcap);
    });
  // logits = xf · Woutᵀ
  zero(d_norm_, BT_ * E);
  linear_backward(d_norm_, g.output_matrix(), Tensor{}, d_logits_, acts_.xf(), w.output_matrix(),
                  BT_, ctx);
  // xf = output_norm(x_final)
  zero(d_x_, BT_ * E);
  norm_backward(d_x_, grad_of<Real>(g.output_norm), d_norm_, acts_.x_final(),
                data_of<Real>(w.output_norm), BT_, E, c_.rms_eps, cx, norm_partial_);
  if (stage_hook_) stage_hook_(c_.n_layer);
  for (int64_t il = c_.n_layer - 1; il >= 0; --il) {
    ffn_block_backward(il, cx);
    if (c_.is_gdn(il)) {
      gdn_block_backward(il, cx);
    } else {
      attention_block_backward(il, cx);
    }
    if (stage_hook_) stage_hook_(il);
  }
  // x = embd·sqrt(n_embd) (Gemma 2), with the forward's rounding of the scale.
  if (c_.arch().embedding_scale) {
    const Real scale = std::sqrt(static_cast<Real>(E));
    parallel_elements(cx, BT_ * E, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) d_x_[i] *= scale;
    });
  }
  if (c_.n_embd_lens > 0) {
    // x = rows · lens_projᵀ over the donor's rows (BT, D), gathered again rather than kept.
    const int64_t D = c_.n_embd_lens;
    lens_rows_.resize(static_cast<size_t>(BT_ * D));
    gather_embedding_rows(lens_rows_.data(), w.token_embd, tokens_, BT_, D, V);
    Real* d_rows = nullptr;  // the donor's table is frozen unless the store trains it
    if (g.token_embd.data) {
      d_lens_rows_.assign(static_cast<size_t>(BT_ * D), Real(0));
      d_rows = d_lens_rows_.data();
    }
    linear_backward(d_rows, g.lens_proj, Tensor{}, d_x_, lens_rows_.data(), w.lens_proj, BT_, ctx);
    if (d_rows) embedding_backward(grad_of<Real>(g.token_embd), d_rows, tokens_.data(), BT_, D);
    return;
  }
  if (g.token_embd.data)
    embedding_backward(grad_of<Real>(g.token_embd), d_x_, tokens_.data(), BT_, E);
}

template <typename Real>
void TrainModel<Real>::ffn_block_backward(int64_t il, const Compute& cx) {
  const LayerWeights& lw = store_.weights().layers[il];
  const LayerWeights& lg = grads_.layers[il];
  const LayerTensors<Real>& a = acts_.saved(il);
  const LinearContext ctx = context(cx);
  const int64_t E = c_.n_embd, F = c_.n_ff;
  // x_out = x_mid + post_ffn_norm(ffn_out): d_x_ flows to x_mid unchanged, and into the FFN.
  const Real* d_out = post_norm_backward(lw.post_ffn_norm, lg.post_ffn_norm, a.ffn_out, cx);
  if (moe_) {
    // ffn_out = Σ routed experts (+ gated shared expert) of xn2.
    zero(d_norm_, BT_ * E);
    moe_->backward(d_norm_, d_out, a.xn2, lw, lg, acts_.saved_experts(il), ctx);
    norm_backward(d_x_, grad_of<Real>(lg.ffn_norm), d_norm_, a.x_mid, data_of<Real>(lw.ffn_norm),
                  BT_, E, c_.rms_eps, cx, norm_partial_);
    return;
  }
  // ffn_out = act · Wdownᵀ
  zero(d_act_, BT_ * F);
  linear_backward(d_act_, lg.ffn_down, Tensor{}, d_out, a.act, lw.ffn_down, BT_, ctx);
  // act = silu(gate) · up, or gelu(gate) · up (Gemma)
  zero(d_gate_, BT_ * F);
  zero(d_up_, BT_ * F);
  const bool silu = c_.arch().ffn_activation == Activation::Silu;
  parallel_elements(cx, BT_ * F, [&](int64_t begin, int64_t end) {
    if (silu) {
      swiglu_backward(cx.cpu, d_gate_ + begin, d_up_ + begin, d_act_ + begin, a.gate + begin,
                      a.up + begin, end - begin);
    } else {
      geglu_backward(d_gate_ + begin, d_up_ + begin, d_act_ + begin, a.gate + begin, a.up + begin,
                     end - begin);
    }
  });
  // gate = xn2 · Wgateᵀ, up = xn2 · Wupᵀ
  zero(d_norm_, BT_ * E);
  linear_backward(d_norm_, lg.ffn_gate, Tensor{}, d_gate_, a.xn2, lw.ffn_gate, BT_, ctx);
  linear_backward(d_norm_, lg.ffn_up, Tensor{}, d_up_, a.xn2, lw.ffn_up, BT_, ctx);
  // xn2 = ffn_norm(x_mid)
  norm_backward(d_x_, grad_of<Real>(lg.ffn_norm), d_norm_, a.x_mid, data_of<Real>(lw.ffn_norm), BT_,
                E, c_.rms_eps, cx, norm_partial_);
}

// The gradient of a block's output before its post norm (Gemma 2), from d_x_ (the
// gradient of the residual sum): into d_norm_ through the norm when the layer has
// one, else d_x_ itself. `in` (BT, E) is the norm's saved input.
template <typename Real>
const Real* TrainModel<Real>::post_norm_backward(const Tensor& w, const Tensor& g, const Real* in,
                                                 const Compute& cx) {
  if (!w.data) return d_x_;
  const int64_t E = c_.n_embd;
  zero(d_norm_, BT_ * E);
  norm_backward(d_norm_, grad_of<Real>(g), d_x_, in, data_of<Real>(w), BT_, E, c_.rms_eps, cx,
                norm_partial_);
  return d_norm_;
}

template <typename Real>
void TrainModel<Real>::attention_block_backward(int64_t il, const Compute& cx) {
  const LayerWeights& lw = store_.weights().layers[il];
  const LayerWeights& lg = grads_.layers[il];
  const LayerTensors<Real>& a = acts_.saved(il);
  const LinearContext ctx = context(cx);
  const int64_t E = c_.n_embd, Q = c_.q_dim(), KV = c_.kv_dim(), D = c_.head_dim;
  // x_mid = x + post_attn_norm(attn_out): d_x_ flows to x unchanged, and into the block.
  const Real* d_out = post_norm_backward(lw.post_attn_norm, lg.post_attn_norm, a.attn_out, cx);
  // attn_out = att · Woᵀ
  zero(d_att_, BT_ * Q);
  linear_backward(d_att_, lg.attn_output, Tensor{}, d_out, a.att, lw.attn_output, BT_, ctx);
  // att = attention(qr, kr, v)
  zero(d_qr_, BT_ * Q);
  zero(d_kr_, BT_ * KV);
  zero(d_v_, BT_ * KV);
  attention_backward(d_qr_, d_kr_, d_v_, d_att_, a.qr, a.kr, a.v, acts_.probs(il),
                     acts_.attention_dims(il), cx, segment_.empty() ? nullptr : segment_.data());
  // qr = rope(q_norm(q)), kr = rope(k_norm(k))
  rope_backward(d_qr_, c_.n_head, cx);
  rope_backward(d_kr_, c_.n_head_kv, cx);
  Real* dq = d_qr_;
  Real* dk = d_kr_;
  if (lw.attn_q_norm.data) {
    // Qwen3 normalises each head ([head_dim] weight), OLMoE the whole q / k row.
    const bool per_head = c_.arch().qk_norm == QkNorm::PerHead;
    const int64_t q_rows = per_head ? BT_ * c_.n_head : BT_, q_n = per_head ? D : Q;
    const int64_t k_rows = per_head ? BT_ * c_.n_head_kv : BT_, k_n = per_head ? D : KV;
    zero(d_q_, BT_ * Q);
    zero(d_k_, BT_ * KV);
    norm_backward(d_q_, grad_of<Real>(lg.attn_q_norm), d_qr_, a.q, data_of<Real>(lw.attn_q_norm),
                  q_rows, q_n, c_.rms_eps, cx, norm_partial_);
    norm_backward(d_k_, grad_of<Real>(lg.attn_k_norm), d_kr_, a.k, data_of<Real>(lw.attn_k_norm),
                  k_rows, k_n, c_.rms_eps, cx, norm_partial_);
    dq = d_q_;
    dk = d_k_;
  }
  // q, k, v = xn · W{q,k,v}ᵀ + b{q,k,v}
  zero(d_norm_, BT_ * E);
  linear_backward(d_norm_, lg.attn_q, lg.attn_q_bias, dq, a.xn, lw.attn_q, BT_, ctx);
  linear_backward(d_norm_, lg.attn_k, lg.attn_k_bias, dk, a.xn, lw.attn_k, BT_, ctx);
  linear_backward(d_norm_, lg.attn_v, lg.attn_v_bias, d_v_, a.xn, lw.attn_v, BT_, ctx);
  // xn = attn_norm(x)
  norm_backward(d_x_, grad_of<Real>(lg.attn_norm), d_norm_, a.x, data_of<Real>(lw.attn_norm), BT_,
                E, c_.rms_eps, cx, norm_partial_);
}

template <typename Real>
void TrainModel<Real>::gdn_block_backward(int64_t il, const Compute& cx) {
  const LayerWeights& lw = store_.weights().layers[il];
  const LayerWeights& lg = grads_.layers[il];
  const LayerTensors<Real>& a = acts_.saved(il);
  const int64_t E = c_.n_embd;
  // x_mid = x + block(attn_norm(x)): d_x_ flows to x unchanged, and into the block
  // (a GDN layer has no post norm, so d_out is d_x_ itself).
  const Real* d_out = post_norm_backward(lw.post_attn_norm, lg.post_attn_norm, a.attn_out, cx);
  TOY_CHECK(d_out != d_norm_, "a gated delta-net layer with a post norm");
  zero(d_norm_, BT_ * E);
  gdn_->backward(d_norm_, d_out, acts_.saved_gdn(il), a.xn, lw, lg, context(cx));
  // xn = attn_norm(x)
  norm_backward(d_x_, grad_of<Real>(lg.attn_norm), d_norm_, a.x, data_of<Real>(lw.attn_norm), BT_,
                E, c_.rms_eps, cx, norm_partial_);
}

template class TrainModel<float>;
template class TrainModel<double>;
template std::vector<std::vector<ElementRange>> gradient_stages(const ParamStore<float>&);
template std::vector<std::vector<ElementRange>> gradient_stages(const ParamStore<double>&);

}  // namespace toy::train
