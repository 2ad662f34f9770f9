#include "train/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <type_traits>

#include "core/error.h"
#include "kernels/activations.h"
#include "kernels/embedding_backward.h"
#include "kernels/linear_backward.h"
#include "kernels/rmsnorm.h"
#include "kernels/rmsnorm_backward.h"
#include "kernels/swiglu_backward.h"

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

}  // namespace

void check_trainable(const ModelConfig& c) {
  const ArchTraits& a = c.arch();
  if (c.is_moe() || a.post_norms || a.embedding_scale || a.softcaps ||
      a.ffn_activation != Activation::Silu || a.qk_norm == QkNorm::FullWidth ||
      c.sliding_window > 0)
    fail(c.source, ": training supports the dense llama family (llama, qwen2, qwen3); ",
         "architecture '", a.name, "' is not supported");
  if (c.head_dim_v != c.head_dim)
    fail(c.source, ": training needs attention.value_length == key_length, found ", c.head_dim_v,
         " and ", c.head_dim);
  if (c.rope.scaling == RopeScaling::Yarn)
    fail(c.source, ": training does not support YaRN rope scaling");
}

template <typename Real>
TrainModel<Real>::TrainModel(ParamStore<Real>& store, int64_t n_seq, int64_t n_pos)
    : store_(store),
      grads_(&store.grad_weights()),
      c_(store.config()),
      B_(n_seq),
      T_(n_pos),
      BT_(n_seq * n_pos) {
  check_trainable(c_);
  TOY_CHECK(B_ > 0 && T_ > 0, "batch ", B_, " x ", T_);
  const int64_t E = c_.n_embd, Q = c_.q_dim(), KV = c_.kv_dim(), F = c_.n_ff, V = c_.n_vocab;
  const int64_t H = c_.n_head, L = c_.n_layer, BT = BT_;
  attn_dims_ = {B_, T_, H, c_.n_head_kv, c_.head_dim, 1.0 / std::sqrt(double(c_.head_dim))};

  rope_params_.mode = c_.rope.mode;
  rope_params_.n_rot = c_.rope.n_rot;
  rope_params_.head_dim = c_.head_dim;
  rope_params_.freq_base = c_.rope.freq_base;
  rope_params_.freq_scale = c_.rope.freq_scale;
  rope_table_ = make_rope_table<Real>(T_, rope_params_);
  positions_.resize(static_cast<size_t>(BT));
  for (int64_t r = 0; r < BT; ++r) positions_[r] = static_cast<int32_t>(r % T_);

  // Every buffer in one arena, sized by a dry run of the same takes.
  const int64_t per_layer = 4 * BT * E + 3 * BT * Q + 3 * BT * KV + B_ * H * T_ * T_ + 3 * BT * F;
  const int64_t global = 5 * BT * E + 2 * BT * V;
  const int64_t scratch = 3 * BT * Q + 3 * BT * KV + 3 * BT * F;
  const int64_t n_buffers = 14 * L + 20;
  arena_.reserve((static_cast<size_t>(L * per_layer + global + scratch) + 16 * n_buffers) *
                 sizeof(Real));
  auto take = [&](int64_t n) { return arena_.take_array<Real>(static_cast<size_t>(n)); };
  layers_.resize(static_cast<size_t>(L));
  for (LayerActs& a : layers_) {
    a.x = take(BT * E);
    a.xn = take(BT * E);
    a.q = take(BT * Q);
    a.k = take(BT * KV);
    a.v = take(BT * KV);
    a.qr = take(BT * Q);
    a.kr = take(BT * KV);
    a.probs = take(B_ * H * T_ * T_);
    a.att = take(BT * Q);
    a.x_mid = take(BT * E);
    a.xn2 = take(BT * E);
    a.gate = take(BT * F);
    a.up = take(BT * F);
    a.act = take(BT * F);
  }
  x_final_ = take(BT * E);
  xf_ = take(BT * E);
  logits_ = take(BT * V);
  proj_ = take(BT * E);
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
void TrainModel<Real>::norm(Real* out, const Real* x, const Tensor& w, int64_t rows, int64_t n,
                            const Compute& cx) {
  const Real* wp = data_of<Real>(w);
  if constexpr (std::is_same_v<Real, float>) {
    cx.parallel_for(
        rows,
        [&](int64_t begin, int64_t end) {
          rmsnorm_forward(out + begin * n, x + begin * n, wp, end - begin, n, c_.rms_eps);
        },
        std::max<int64_t>(1, 4096 / n));
  } else {
    rmsnorm_reference(out, x, wp, rows, n, c_.rms_eps);
  }
}

template <typename Real>
void TrainModel<Real>::rope(Real* x, int64_t n_heads, const Compute& cx) {
  const int64_t row = n_heads * c_.head_dim;
  if constexpr (std::is_same_v<Real, float>) {
    cx.parallel_for(B_, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b)
        rope_forward(x + b * T_ * row, T_, n_heads, 0, rope_params_);
    });
  } else {
    rope_rotate(x, positions_.data(), BT_, n_heads, rope_table_, +1);
  }
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
  tokens_.assign(tokens, tokens + BT_);
  targets_.assign(targets, targets + BT_);
  const Weights& w = store_.weights();
  const int64_t E = c_.n_embd;
  embedding_forward_train(layers_.empty() ? x_final_ : layers_[0].x, data_of<Real>(w.token_embd),
                          tokens, BT_, E, c_.n_vocab);
  for (int64_t il = 0; il < c_.n_layer; ++il) {
    attention_block(il, cx);
    ffn_block(il, cx);
  }
  norm(xf_, x_final_, w.output_norm, BT_, E, cx);
  linear_forward(logits_, xf_, data_of<Real>(w.output_matrix()), static_cast<const Real*>(nullptr),
                 BT_, E, c_.n_vocab, cx);
  return cross_entropy_forward(logits_, targets, BT_, c_.n_vocab);
}

template <typename Real>
void TrainModel<Real>::attention_block(int64_t il, const Compute& cx) {
  const LayerWeights& lw = store_.weights().layers[il];
  LayerActs& a = layers_[il];
  const int64_t E = c_.n_embd, Q = c_.q_dim(), KV = c_.kv_dim(), D = c_.head_dim;
  norm(a.xn, a.x, lw.attn_norm, BT_, E, cx);
  linear_forward(a.q, a.xn, data_of<Real>(lw.attn_q), data_of<Real>(lw.attn_q_bias), BT_, E, Q, cx);
  linear_forward(a.k, a.xn, data_of<Real>(lw.attn_k), data_of<Real>(lw.attn_k_bias), BT_, E, KV,
                 cx);
  linear_forward(a.v, a.xn, data_of<Real>(lw.attn_v), data_of<Real>(lw.attn_v_bias), BT_, E, KV,
                 cx);
  if (lw.attn_q_norm.data) {  // Qwen3: RMSNorm of each head before RoPE
    norm(a.qr, a.q, lw.attn_q_norm, BT_ * c_.n_head, D, cx);
    norm(a.kr, a.k, lw.attn_k_norm, BT_ * c_.n_head_kv, D, cx);
  } else {
    std::copy(a.q, a.q + BT_ * Q, a.qr);
    std::copy(a.k, a.k + BT_ * KV, a.kr);
  }
  rope(a.qr, c_.n_head, cx);
  rope(a.kr, c_.n_head_kv, cx);
  attention_forward_train(a.att, a.probs, a.qr, a.kr, a.v, attn_dims_, cx);
  linear_forward(proj_, a.att, data_of<Real>(lw.attn_output), static_cast<const Real*>(nullptr),
                 BT_, Q, E, cx);
  parallel_elements(cx, BT_ * E, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) a.x_mid[i] = a.x[i] + proj_[i];
  });
}

template <typename Real>
void TrainModel<Real>::ffn_block(int64_t il, const Compute& cx) {
  const LayerWeights& lw = store_.weights().layers[il];
  LayerActs& a = layers_[il];
  const int64_t E = c_.n_embd, F = c_.n_ff;
  norm(a.xn2, a.x_mid, lw.ffn_norm, BT_, E, cx);
  linear_forward(a.gate, a.xn2, data_of<Real>(lw.ffn_gate), static_cast<const Real*>(nullptr), BT_,
                 E, F, cx);
  linear_forward(a.up, a.xn2, data_of<Real>(lw.ffn_up), static_cast<const Real*>(nullptr), BT_, E,
                 F, cx);
  if constexpr (std::is_same_v<Real, float>) {
    parallel_elements(cx, BT_ * F, [&](int64_t begin, int64_t end) {
      gated_activation(a.act + begin, a.gate + begin, a.up + begin, end - begin, Activation::Silu);
    });
  } else {
    swiglu_reference(a.act, a.gate, a.up, BT_ * F);
  }
  linear_forward(proj_, a.act, data_of<Real>(lw.ffn_down), static_cast<const Real*>(nullptr), BT_,
                 F, E, cx);
  Real* next = il + 1 < c_.n_layer ? layers_[il + 1].x : x_final_;
  parallel_elements(cx, BT_ * E, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) next[i] = a.x_mid[i] + proj_[i];
  });
}

template <typename Real>
void TrainModel<Real>::backward(double grad_scale, const Compute& cx) {
  const Weights& w = store_.weights();
  Weights& g = *grads_;
  const int64_t E = c_.n_embd, V = c_.n_vocab;
  cross_entropy_forward_backward(d_logits_, logits_, targets_.data(), BT_, V, grad_scale, cx);
  // logits = xf · Woutᵀ
  zero(d_norm_, BT_ * E);
  linear_backward(d_norm_, grad_of<Real>(g.output_matrix()), static_cast<Real*>(nullptr), d_logits_,
                  xf_, data_of<Real>(w.output_matrix()), BT_, E, V, cx);
  // xf = output_norm(x_final)
  zero(d_x_, BT_ * E);
  norm_backward(d_x_, grad_of<Real>(g.output_norm), d_norm_, x_final_, data_of<Real>(w.output_norm),
                BT_, E, c_.rms_eps, cx, norm_partial_);
  for (int64_t il = c_.n_layer - 1; il >= 0; --il) {
    ffn_block_backward(il, cx);
    attention_block_backward(il, cx);
  }
  embedding_backward(grad_of<Real>(g.token_embd), d_x_, tokens_.data(), BT_, E);
}

template <typename Real>
void TrainModel<Real>::ffn_block_backward(int64_t il, const Compute& cx) {
  const LayerWeights& lw = store_.weights().layers[il];
  LayerWeights& lg = grads_->layers[il];
  LayerActs& a = layers_[il];
  const int64_t E = c_.n_embd, F = c_.n_ff;
  Real* no_bias = nullptr;
  // next = x_mid + act · Wdownᵀ: d_x_ flows to x_mid unchanged, and into the FFN.
  zero(d_act_, BT_ * F);
  linear_backward(d_act_, grad_of<Real>(lg.ffn_down), no_bias, d_x_, a.act,
                  data_of<Real>(lw.ffn_down), BT_, F, E, cx);
  zero(d_gate_, BT_ * F);
  zero(d_up_, BT_ * F);
  parallel_elements(cx, BT_ * F, [&](int64_t begin, int64_t end) {
    swiglu_backward(cx.cpu, d_gate_ + begin, d_up_ + begin, d_act_ + begin, a.gate + begin,
                    a.up + begin, end - begin);
  });
  zero(d_norm_, BT_ * E);
  linear_backward(d_norm_, grad_of<Real>(lg.ffn_gate), no_bias, d_gate_, a.xn2,
                  data_of<Real>(lw.ffn_gate), BT_, E, F, cx);
  linear_backward(d_norm_, grad_of<Real>(lg.ffn_up), no_bias, d_up_, a.xn2,
                  data_of<Real>(lw.ffn_up), BT_, E, F, cx);
  norm_backward(d_x_, grad_of<Real>(lg.ffn_norm), d_norm_, a.x_mid, data_of<Real>(lw.ffn_norm), BT_,
                E, c_.rms_eps, cx, norm_partial_);
}

template <typename Real>
void TrainModel<Real>::attention_block_backward(int64_t il, const Compute& cx) {
  const LayerWeights& lw = store_.weights().layers[il];
  LayerWeights& lg = grads_->layers[il];
  LayerActs& a = layers_[il];
  const int64_t E = c_.n_embd, Q = c_.q_dim(), KV = c_.kv_dim(), D = c_.head_dim;
  Real* no_bias = nullptr;
  // x_mid = x + att · Woᵀ
  zero(d_att_, BT_ * Q);
  linear_backward(d_att_, grad_of<Real>(lg.attn_output), no_bias, d_x_, a.att,
                  data_of<Real>(lw.attn_output), BT_, Q, E, cx);
  zero(d_qr_, BT_ * Q);
  zero(d_kr_, BT_ * KV);
  zero(d_v_, BT_ * KV);
  attention_backward(d_qr_, d_kr_, d_v_, d_att_, a.qr, a.kr, a.v, a.probs, attn_dims_, cx);
  rope_backward(d_qr_, c_.n_head, cx);
  rope_backward(d_kr_, c_.n_head_kv, cx);
  Real* dq = d_qr_;
  Real* dk = d_kr_;
  if (lw.attn_q_norm.data) {
    zero(d_q_, BT_ * Q);
    zero(d_k_, BT_ * KV);
    norm_backward(d_q_, grad_of<Real>(lg.attn_q_norm), d_qr_, a.q, data_of<Real>(lw.attn_q_norm),
                  BT_ * c_.n_head, D, c_.rms_eps, cx, norm_partial_);
    norm_backward(d_k_, grad_of<Real>(lg.attn_k_norm), d_kr_, a.k, data_of<Real>(lw.attn_k_norm),
                  BT_ * c_.n_head_kv, D, c_.rms_eps, cx, norm_partial_);
    dq = d_q_;
    dk = d_k_;
  }
  zero(d_norm_, BT_ * E);
  linear_backward(d_norm_, grad_of<Real>(lg.attn_q), grad_of<Real>(lg.attn_q_bias), dq, a.xn,
                  data_of<Real>(lw.attn_q), BT_, E, Q, cx);
  linear_backward(d_norm_, grad_of<Real>(lg.attn_k), grad_of<Real>(lg.attn_k_bias), dk, a.xn,
                  data_of<Real>(lw.attn_k), BT_, E, KV, cx);
  linear_backward(d_norm_, grad_of<Real>(lg.attn_v), grad_of<Real>(lg.attn_v_bias), d_v_, a.xn,
                  data_of<Real>(lw.attn_v), BT_, E, KV, cx);
  norm_backward(d_x_, grad_of<Real>(lg.attn_norm), d_norm_, a.x, data_of<Real>(lw.attn_norm), BT_,
                E, c_.rms_eps, cx, norm_partial_);
}

template class TrainModel<float>;
template class TrainModel<double>;

}  // namespace toy::train
