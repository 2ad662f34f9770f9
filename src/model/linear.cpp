#include "model/linear.h"

#include <vector>

#include "core/error.h"
#include "kernels/lora.h"
#include "model/lora.h"

namespace toy {
namespace {

// y (T, n_out) += Σ scale · B·(A·x) over the adapter terms of w, in F32, in the order the
// adapters were added (llama.cpp adds each adapter's term to the base product in turn).
// Both thin products run through matmul, the inference kernel (the double forward of the
// gradient checks uses kernels/lora.h's reference instead).
void add_lora(float* y, const float* x, const Tensor& w, int64_t T, const LinearContext& ctx) {
  const auto terms = ctx.lora->find(w.data);
  if (terms.empty()) return;
  // Grow-only per-thread buffers: the decode loop allocates nothing after the first token.
  static thread_local std::vector<float> ax, delta, dropped;
  const int64_t n_in = w.ne[0], n_out = w.ne[1];
  const LoraDropout& dropout = ctx.lora->dropout;
  for (const LoraTerm& term : terms) {
    const int64_t r = term.a->ne[1];
    if (ax.size() < static_cast<size_t>(T * r)) ax.resize(static_cast<size_t>(T * r));
    if (delta.size() < static_cast<size_t>(T * n_out)) delta.resize(static_cast<size_t>(T * n_out));
    const float* input = x;  // (T, n_in)
    if (dropout.p > 0.0f && term.grad_a) {
      if (dropped.size() < static_cast<size_t>(T * n_in))
        dropped.resize(static_cast<size_t>(T * n_in));
      lora_dropout(dropped.data(), x, T, n_in, dropout.p, dropout.stream, term.id, dropout.row0);
      input = dropped.data();
    }
    matmul(ax.data(), input, *term.a, T, ctx.compute, MatmulMode::Exact);         // (T, r)
    matmul(delta.data(), ax.data(), *term.b, T, ctx.compute, MatmulMode::Exact);  // (T, n_out)
    const float s = term.scale;
    for (int64_t i = 0; i < T * n_out; ++i) y[i] += s * delta[static_cast<size_t>(i)];
  }
}

}  // namespace

void linear(float* y, const float* x, const Tensor& w, const Tensor& bias, int64_t T,
            const LinearContext& ctx) {
  matmul(y, x, w, T, ctx.compute, ctx.mode);
  if (ctx.lora) add_lora(y, x, w, T, ctx);
  if (bias.data) {
    const int64_t n_out = w.ne[1];
    TOY_CHECK(bias.type == DType::F32 && bias.ne[0] == n_out, "bias shape ", bias.shape_string());
    const float* b = bias.ptr<const float>();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < n_out; ++o) y[t * n_out + o] += b[o];
  }
}

void linear(float* y, const float* x, const Tensor& w, int64_t T, const LinearContext& ctx) {
  matmul(y, x, w, T, ctx.compute, ctx.mode);
  if (ctx.lora) add_lora(y, x, w, T, ctx);
}

Tensor matrix_slice(const Tensor& stack, int64_t e) {
  TOY_CHECK(e >= 0 && e < stack.ne[2] && stack.ne[3] == 1, "slice ", e, " of ",
            stack.shape_string());
  Tensor t = stack;
  t.n_dims = 2;
  t.ne = {stack.ne[0], stack.ne[1], 1, 1};
  t.data = static_cast<uint8_t*>(stack.data) + static_cast<size_t>(e) * stack.nb[2];
  t.nb[2] = t.nb[1] * static_cast<size_t>(t.ne[1]);
  t.nb[3] = t.nb[2];
  return t;
}

}  // namespace toy
