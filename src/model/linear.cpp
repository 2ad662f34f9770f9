#include "model/linear.h"

#include "core/error.h"

namespace toy {

void linear(float* y, const float* x, const Tensor& w, const Tensor& bias, int64_t T,
            const LinearContext& ctx) {
  matmul(y, x, w, T, ctx.compute, ctx.mode);
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
