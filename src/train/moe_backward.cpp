#include "train/moe_backward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "kernels/moe.h"
#include "kernels/swiglu_backward.h"

namespace toy::train {
namespace {

template <typename Real>
void zero(Real* p, int64_t n) {
  std::memset(p, 0, static_cast<size_t>(n) * sizeof(Real));
}

// The shared expert's gate vector [n_embd] as the one-row matrix the forward's linear() read
// (an empty tensor stays empty: no gradient).
Tensor row_matrix(const Tensor& vector) {
  Tensor t = vector;
  t.n_dims = 2;
  return t;
}

// Expert e's matrix of a stack, or an empty tensor (no gradient) for an empty stack.
Tensor slice_or_none(const Tensor& stack, int64_t e) {
  return stack.data ? matrix_slice(stack, e) : Tensor{};
}

}  // namespace

template <typename Real>
MoeBackward<Real>::MoeBackward(const ModelConfig& c, int64_t rows) : c_(c), N_(rows) {
  TOY_CHECK(c.is_moe(), "MoeBackward of a dense model");
  const int64_t N = rows, E = c.n_embd, X = c.n_expert, K = c.n_expert_used;
  const int64_t F = std::max(c.n_ff_exp, c.n_ff_shexp);
  const int64_t reals = 4 * N * E + 6 * N * F + N * K + N * X + N;
  arena_.reserve(static_cast<size_t>(reals) * sizeof(Real) + static_cast<size_t>(N) * 4 + 16 * 64);
  auto take = [&](int64_t n) { return arena_.take_array<Real>(static_cast<size_t>(n)); };
  routed_ = arena_.take_array<int32_t>(static_cast<size_t>(N));
  x_ = take(N * E);
  out_ = take(N * E);
  d_y_ = take(N * E);
  d_x_ = take(N * E);
  gate_ = take(N * F);
  up_ = take(N * F);
  act_ = take(N * F);
  d_gate_ = take(N * F);
  d_up_ = take(N * F);
  d_act_ = take(N * F);
  d_w_ = take(N * K);
  d_router_ = take(N * X);
  d_shared_ = take(N);
}

// out_ (n, E) = down(silu(x·gateᵀ) · x·upᵀ), computed as the forward's gated_ffn does
// (the same linear() and SwiGLU kernel, split over rows the same way), so the backward
// sees the forward's values.
template <typename Real>
void MoeBackward<Real>::swiglu_ffn(const Real* x, const Tensor& gate, const Tensor& up,
                                   const Tensor& down, int64_t n, const LinearContext& ctx) {
  const int64_t F = gate.ne[1];
  linear(gate_, x, gate, n, ctx);
  linear(up_, x, up, n, ctx);
  if constexpr (std::is_same_v<Real, float>) {
    ctx.compute.parallel_for(
        n,
        [&](int64_t b, int64_t e) {
          ctx.compute.cpu.swiglu(act_ + b * F, gate_ + b * F, up_ + b * F, (e - b) * F);
        },
        std::max<int64_t>(1, 4096 / F));
  } else {
    swiglu_reference(act_, gate_, up_, n * F);
  }
  linear(out_, act_, down, n, ctx);
}

// After swiglu_ffn of the same rows: d_x (n, E) += ∂L/∂x for d_y (n, E) = ∂L/∂out, and
// the matrices' gradients into d_gate, d_up, d_down where those are set.
template <typename Real>
void MoeBackward<Real>::swiglu_ffn_backward(Real* d_x, const Real* d_y, const Real* x,
                                            const Tensor& gate, const Tensor& up,
                                            const Tensor& down, const Tensor& d_gate,
                                            const Tensor& d_up, const Tensor& d_down, int64_t n,
                                            const LinearContext& ctx) {
  const int64_t F = gate.ne[1];
  // out = act · Wdownᵀ
  zero(d_act_, n * F);
  linear_backward(d_act_, d_down, Tensor{}, d_y, act_, down, n, ctx);
  // act = silu(gate) · up
  zero(d_gate_, n * F);
  zero(d_up_, n * F);
  ctx.compute.parallel_for(
      n * F,
      [&](int64_t b, int64_t e) {
        swiglu_backward(ctx.compute.cpu, d_gate_ + b, d_up_ + b, d_act_ + b, gate_ + b, up_ + b,
                        e - b);
      },
      4096);
  // gate = x · Wgateᵀ, up = x · Wupᵀ
  linear_backward(d_x, d_gate, Tensor{}, d_gate_, x, gate, n, ctx);
  linear_backward(d_x, d_up, Tensor{}, d_up_, x, up, n, ctx);
}

template <typename Real>
void MoeBackward<Real>::backward(Real* d_in, const Real* d_out, const Real* in,
                                 const LayerWeights& l, const LayerWeights& g,
                                 const ExpertBuffers<Real>& saved, const LinearContext& ctx) {
  const int64_t N = N_, E = c_.n_embd, X = c_.n_expert, K = c_.n_expert_used;
  TOY_CHECK(saved.router && saved.expert_ids && saved.expert_w, "no saved routing");
  // out = Σ_slots w_i · expert_{id_i}(in) (+ sigmoid(g) · shared(in)):
  //   ∂L/∂w_i = <d_out_t, expert(in_t)>, and each expert's output gradient is w_i·d_out_t.
  zero(d_w_, N * K);
  for (int32_t e = 0; e < X; ++e) {
    int64_t n = 0;
    for (int64_t i = 0; i < N * K; ++i) {
      if (saved.expert_ids[i] != e) continue;
      routed_[n] = static_cast<int32_t>(i);
      const int64_t t = i / K;
      std::memcpy(&x_[n * E], &in[t * E], sizeof(Real) * E);
      const Real w = saved.expert_w[i];
      for (int64_t j = 0; j < E; ++j) d_y_[n * E + j] = w * d_out[t * E + j];
      ++n;
    }
    if (n == 0) continue;
    const Tensor gate = matrix_slice(l.ffn_gate_exps, e), up = matrix_slice(l.ffn_up_exps, e),
                 down = matrix_slice(l.ffn_down_exps, e);
    swiglu_ffn(x_, gate, up, down, n, ctx);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t i = routed_[r], t = i / K;
      double dot = 0.0;
      for (int64_t j = 0; j < E; ++j) dot += double(d_out[t * E + j]) * out_[r * E + j];
      d_w_[i] = static_cast<Real>(dot);
    }
    zero(d_x_, n * E);
    swiglu_ffn_backward(d_x_, d_y_, x_, gate, up, down, slice_or_none(g.ffn_gate_exps, e),
                        slice_or_none(g.ffn_up_exps, e), slice_or_none(g.ffn_down_exps, e), n, ctx);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t t = routed_[r] / K;
      for (int64_t j = 0; j < E; ++j) d_in[t * E + j] += d_x_[r * E + j];
    }
  }
  // weights = top-k(softmax(router)), renormalised per the architecture;
  // router = in · Wrouterᵀ.
  zero(d_router_, N * X);
  moe_route_backward(d_router_, d_w_, saved.router, saved.expert_ids, N, X, K,
                     c_.arch().renormalize_expert_weights);
  linear_backward(d_in, g.ffn_gate_inp, Tensor{}, d_router_, in, l.ffn_gate_inp, N, ctx);

  if (c_.arch().shared_expert) {
    // Qwen2-MoE: out += σ(s)·shared(in), s = in · w_shexp_gate:
    //   ∂L/∂shared = σ(s)·d_out,  ∂L/∂s = <d_out, shared(in)>·σ(s)·(1 − σ(s)).
    TOY_CHECK(saved.shared_gate, "no saved shared-expert gate");
    swiglu_ffn(in, l.ffn_gate_shexp, l.ffn_up_shexp, l.ffn_down_shexp, N, ctx);
    for (int64_t t = 0; t < N; ++t) {
      const Real g = Real(1) / (Real(1) + std::exp(-saved.shared_gate[t]));
      double dot = 0.0;
      for (int64_t j = 0; j < E; ++j) {
        dot += double(d_out[t * E + j]) * out_[t * E + j];
        d_y_[t * E + j] = g * d_out[t * E + j];
      }
      d_shared_[t] = static_cast<Real>(dot * g * (1.0 - g));
    }
    swiglu_ffn_backward(d_in, d_y_, in, l.ffn_gate_shexp, l.ffn_up_shexp, l.ffn_down_shexp,
                        g.ffn_gate_shexp, g.ffn_up_shexp, g.ffn_down_shexp, N, ctx);
    linear_backward(d_in, row_matrix(g.ffn_gate_inp_shexp), Tensor{}, d_shared_, in,
                    row_matrix(l.ffn_gate_inp_shexp), N, ctx);
  }
}

template class MoeBackward<float>;
template class MoeBackward<double>;

}  // namespace toy::train
