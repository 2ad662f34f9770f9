// linear() in double precision and linear_backward(): what training adds to
// the one weight-product entry point (model/linear.h). The float backward runs
// the packed GEMM of kernels/linear_backward.h over all rows at once.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/linear_backward.h"
#include "kernels/lora.h"
#include "kernels/matmul.h"
#include "model/linear.h"
#include "model/lora.h"
#include "quant/quant.h"

namespace toy {
namespace {

template <typename Real>
constexpr DType dtype_of() {
  return std::is_same_v<Real, float> ? DType::F32 : DType::F64;
}

template <typename Real>
void check_dense(const Tensor& t, int64_t n, const char* what) {
  TOY_CHECK(t.type == dtype_of<Real>() && t.contiguous() && t.numel() == n, what,
            ": training needs a dense ", dtype_name(dtype_of<Real>()), " tensor of ", n,
            " elements, found ", dtype_name(t.type), " ", t.shape_string());
}

template <typename Real>
Real* data_or_null(const Tensor& t) {
  return static_cast<Real*>(t.data);
}

// dx (T, n_in) += dy (T, n_out) · W for a weight stored in any type (a quantized or 16-bit
// base under LoRA or frozen): blocks of kRows rows of W are dequantized into a reused buffer
// and multiplied in F32, so the full F32 matrix never exists.
void add_input_gradient(float* dx, const float* dy, const Tensor& w, int64_t T, const Compute& cx,
                        GemmInputs inputs) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  for_each_dequantized_block(w, 256, cx, [&](const float* block, int64_t o, int64_t rows) {
    // dx(t, i) += Σ_{o'} dy(t, o + o') · W(o + o', i)
    gemm(dx, n_in, {dy + o, n_out, 1}, {block, n_in, 1}, T, n_in, rows, true, cx, inputs);
  });
}

// The adapter's input: x, or x with the term's dropout mask (model/lora.h LoraDropout).
template <typename Real>
const Real* lora_input(const Real* x, int64_t T, int64_t n_in, const LoraTerm& term,
                       const LoraDropout& dropout, std::vector<Real>& buffer) {
  if (!(dropout.p > 0.0f && term.grad_a)) return x;
  buffer.resize(static_cast<size_t>(T * n_in));
  lora_dropout(buffer.data(), x, T, n_in, dropout.p, dropout.stream, term.id, dropout.row0);
  return buffer.data();
}

template <typename Real>
void apply_lora(Real* y, const Real* x, const Tensor& w, int64_t T, const LinearContext& ctx) {
  if (!ctx.lora) return;
  static thread_local std::vector<Real> scratch, dropped;
  for (const LoraTerm& term : ctx.lora->find(w.data)) {
    check_dense<Real>(*term.a, term.a->numel(), "LoRA A");
    check_dense<Real>(*term.b, term.b->numel(), "LoRA B");
    const Real* input = lora_input(x, T, w.ne[0], term, ctx.lora->dropout, dropped);
    lora_forward<Real>(y, input, term.a->ptr<const Real>(), term.b->ptr<const Real>(),
                       static_cast<Real>(term.scale), T, w.ne[0], term.a->ne[1], w.ne[1],
                       ctx.compute, scratch);
  }
}

template <typename Real>
void backward(Real* dx, const Tensor& dw, const Tensor& dbias, const Real* dy, const Real* x,
              const Tensor& w, int64_t T, const LinearContext& ctx) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  if (dw.data) check_dense<Real>(dw, n_in * n_out, "linear_backward weight gradient");
  if (dbias.data) check_dense<Real>(dbias, n_out, "linear_backward bias gradient");
  // Mixed precision rounds the inputs of the weight products, not the adapters' thin ones.
  const GemmInputs inputs = gemm_inputs(ctx.mode);
  if (w.type == dtype_of<Real>()) {
    check_dense<Real>(w, n_in * n_out, "linear_backward weight");
    linear_backward<Real>(dx, data_or_null<Real>(dw), data_or_null<Real>(dbias), dy, x,
                          w.ptr<const Real>(), T, n_in, n_out, ctx.compute, inputs);
  } else if constexpr (std::is_same_v<Real, float>) {
    // A frozen base in its stored type: only the input gradient flows through it.
    TOY_CHECK(!dw.data, "linear_backward: a ", dtype_name(w.type),
              " weight cannot be trained in place (it needs an F32 master copy)");
    TOY_CHECK(quant::can_dequantize(w.type) && w.contiguous(), "linear_backward: weight type ",
              dtype_name(w.type));
    if (dx) add_input_gradient(dx, dy, w, T, ctx.compute, inputs);
    if (dbias.data)
      linear_backward<float>(nullptr, nullptr, data_or_null<float>(dbias), dy, x, nullptr, T, n_in,
                             n_out, ctx.compute);
  } else {
    check_dense<Real>(w, n_in * n_out, "linear_backward weight");
  }
  if (!ctx.lora) return;
  static thread_local std::vector<Real> scratch, dropped, dx_dropped;
  const LoraDropout& dropout = ctx.lora->dropout;
  for (const LoraTerm& term : ctx.lora->find(w.data)) {
    check_dense<Real>(*term.a, term.a->numel(), "LoRA A");
    check_dense<Real>(*term.b, term.b->numel(), "LoRA B");
    Real* da = term.grad_a ? term.grad_a->ptr<Real>() : nullptr;
    Real* db = term.grad_b ? term.grad_b->ptr<Real>() : nullptr;
    const Real* input = lora_input(x, T, n_in, term, dropout, dropped);
    // With dropout the adapter's input gradient goes through the same mask.
    Real* dx_term = dx;
    if (input != x && dx) {
      dx_dropped.assign(static_cast<size_t>(T * n_in), Real(0));
      dx_term = dx_dropped.data();
    }
    lora_backward<Real>(dx_term, da, db, dy, input, term.a->ptr<const Real>(),
                        term.b->ptr<const Real>(), static_cast<Real>(term.scale), T, n_in,
                        term.a->ne[1], n_out, ctx.compute, scratch);
    if (dx_term != dx)
      lora_dropout_backward(dx, dx_term, T, n_in, dropout.p, dropout.stream, term.id, dropout.row0);
  }
}

}  // namespace

void linear(double* y, const double* x, const Tensor& w, const Tensor& bias, int64_t T,
            const LinearContext& ctx) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  check_dense<double>(w, n_in * n_out, "linear weight");
  if (bias.data) check_dense<double>(bias, n_out, "linear bias");
  linear_forward<double>(y, x, w.ptr<const double>(), data_or_null<const double>(bias), T, n_in,
                         n_out, ctx.compute);
  apply_lora<double>(y, x, w, T, ctx);
}

void linear(double* y, const double* x, const Tensor& w, int64_t T, const LinearContext& ctx) {
  linear(y, x, w, Tensor{}, T, ctx);
}

void linear_backward(float* dx, const Tensor& dw, const Tensor& dbias, const float* dy,
                     const float* x, const Tensor& w, int64_t T, const LinearContext& ctx) {
  backward<float>(dx, dw, dbias, dy, x, w, T, ctx);
}

void linear_backward(double* dx, const Tensor& dw, const Tensor& dbias, const double* dy,
                     const double* x, const Tensor& w, int64_t T, const LinearContext& ctx) {
  backward<double>(dx, dw, dbias, dy, x, w, T, ctx);
}

}  // namespace toy
