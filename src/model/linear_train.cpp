// linear() in double precision and linear_backward(): what training adds to
// the one weight-product entry point (model/linear.h). The float backward runs
// the packed GEMM of kernels/linear_backward.h over all rows at once.
#include <type_traits>

#include "core/error.h"
#include "kernels/linear_backward.h"
#include "model/linear.h"

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

template <typename Real>
void backward(Real* dx, const Tensor& dw, const Tensor& dbias, const Real* dy, const Real* x,
              const Tensor& w, int64_t T, const LinearContext& ctx) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  check_dense<Real>(w, n_in * n_out, "linear_backward weight");
  if (dw.data) check_dense<Real>(dw, n_in * n_out, "linear_backward weight gradient");
  if (dbias.data) check_dense<Real>(dbias, n_out, "linear_backward bias gradient");
  linear_backward<Real>(dx, data_or_null<Real>(dw), data_or_null<Real>(dbias), dy, x,
                        w.ptr<const Real>(), T, n_in, n_out, ctx.compute);
}

}  // namespace

void linear(double* y, const double* x, const Tensor& w, const Tensor& bias, int64_t T,
            const LinearContext& ctx) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  check_dense<double>(w, n_in * n_out, "linear weight");
  if (bias.data) check_dense<double>(bias, n_out, "linear bias");
  linear_forward<double>(y, x, w.ptr<const double>(), data_or_null<const double>(bias), T, n_in,
                         n_out, ctx.compute);
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
