// Training linear layers on F32 (or, for gradient checks, F64) master weights:
// y = x·Wᵀ + b and its backward dx += dy·W, dW += dyᵀ·x, db += Σ dy, each one
// matrix multiply over all B·T rows at once. Training throughput comes from
// `gemm`, a packed, blocked, threaded kernel around the backend's micro-kernel (Goto / BLIS
// structure); `gemm_reference` is its scalar reference, instantiated for float and double.
#pragma once

#include <cstdint>

#include "kernels/compute.h"

namespace toy {

// A strided matrix operand: element (r, c) is at data[r*row_stride + c*col_stride].
template <typename Real>
struct MatrixRef {
  const Real* data;
  int64_t row_stride;
  int64_t col_stride;
};

// What a product's inputs are rounded to: F32 (not rounded), or BF16 — mixed-precision
// training (--compute-type bf16): both operands rounded to BF16 (round to nearest even),
// products summed in F32; through the backend's BF16 dot products where the CPU has them
// (AVX512_BF16: twice the multiply-adds per instruction), else rounded F32 panels.
enum class GemmInputs { F32, BF16, F16 };

// C (M×N, rows ldc apart) = A (M×K) · B (K×N), or C += A·B when `accumulate`.
// Each element's sum runs over k in order, whatever the thread count, so the
// result is bit-identical for any thread count.
void gemm(float* c, int64_t ldc, MatrixRef<float> a, MatrixRef<float> b, int64_t M, int64_t N,
          int64_t K, bool accumulate, const Compute& cx, GemmInputs inputs = GemmInputs::F32);

// gemm on the calling thread only, for callers that already split their work
// over the threads (attention runs one per (sequence, KV head)). float runs the
// packed kernel, double the reference.
template <typename Real>
void gemm_in_thread(const cpu::Backend& cpu, Real* c, int64_t ldc, MatrixRef<Real> a,
                    MatrixRef<Real> b, int64_t M, int64_t N, int64_t K, bool accumulate,
                    GemmInputs inputs = GemmInputs::F32);

// The scalar reference of gemm (single-threaded, sums in Real).
template <typename Real>
void gemm_reference(Real* c, int64_t ldc, MatrixRef<Real> a, MatrixRef<Real> b, int64_t M,
                    int64_t N, int64_t K, bool accumulate);

// gemm for float (packed, threaded), gemm_reference for double (gradient checks).
template <typename Real>
void gemm_any(Real* c, int64_t ldc, MatrixRef<Real> a, MatrixRef<Real> b, int64_t M, int64_t N,
              int64_t K, bool accumulate, const Compute& cx, GemmInputs inputs = GemmInputs::F32);

// y (T, n_out) = x (T, n_in) · Wᵀ + bias, W (n_out, n_in) row-major (ne = [n_in, n_out]),
// bias (n_out) or null. float runs `gemm`, double the reference.
template <typename Real>
void linear_forward(Real* y, const Real* x, const Real* w, const Real* bias, int64_t T,
                    int64_t n_in, int64_t n_out, const Compute& cx,
                    GemmInputs inputs = GemmInputs::F32);

// Accumulates dx (T, n_in) += dy·W (skipped when dx is null), dw (n_out, n_in) += dyᵀ·x
// (skipped when null),
// dbias (n_out) += Σ_t dy (skipped when null). dy: (T, n_out).
template <typename Real>
void linear_backward(Real* dx, Real* dw, Real* dbias, const Real* dy, const Real* x, const Real* w,
                     int64_t T, int64_t n_in, int64_t n_out, const Compute& cx,
                     GemmInputs inputs = GemmInputs::F32);

}  // namespace toy
