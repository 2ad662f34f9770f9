#include "kernels/lora.h"

#include "kernels/linear_backward.h"

namespace toy {
namespace {

uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Calls fn(t, i, keep_scale) for every element: 0 where dropped, 1/(1 − p) where kept.
template <typename Real, typename Fn>
void for_each_mask(int64_t T, int64_t n_in, float p, uint64_t stream, uint32_t term, int64_t row0,
                   Fn&& fn) {
  const auto threshold = static_cast<uint64_t>(double(p) * 0x1.0p24);
  const Real keep = Real(1.0 / (1.0 - double(p)));
  const uint64_t base = splitmix64(stream ^ (uint64_t(term) + 1) * 0xD1B54A32D192ED03ull);
  for (int64_t t = 0; t < T; ++t) {
    const uint64_t row = splitmix64(base ^ uint64_t(row0 + t));
    for (int64_t i = 0; i < n_in; ++i)
      fn(t, i, (splitmix64(row + uint64_t(i)) >> 40) < threshold ? Real(0) : keep);
  }
}

}  // namespace

template <typename Real>
void lora_dropout(Real* out, const Real* x, int64_t T, int64_t n_in, float p, uint64_t stream,
                  uint32_t term, int64_t row0) {
  for_each_mask<Real>(T, n_in, p, stream, term, row0, [&](int64_t t, int64_t i, Real scale) {
    out[t * n_in + i] = x[t * n_in + i] * scale;
  });
}

template <typename Real>
void lora_dropout_backward(Real* dx, const Real* g, int64_t T, int64_t n_in, float p,
                           uint64_t stream, uint32_t term, int64_t row0) {
  for_each_mask<Real>(T, n_in, p, stream, term, row0, [&](int64_t t, int64_t i, Real scale) {
    dx[t * n_in + i] += g[t * n_in + i] * scale;
  });
}

template void lora_dropout<float>(float*, const float*, int64_t, int64_t, float, uint64_t, uint32_t,
                                  int64_t);
template void lora_dropout<double>(double*, const double*, int64_t, int64_t, float, uint64_t,
                                   uint32_t, int64_t);
template void lora_dropout_backward<float>(float*, const float*, int64_t, int64_t, float, uint64_t,
                                           uint32_t, int64_t);
template void lora_dropout_backward<double>(double*, const double*, int64_t, int64_t, float,
                                            uint64_t, uint32_t, int64_t);

template <typename Real>
void lora_forward(Real* y, const Real* x, const Real* a, const Real* b, Real scale, int64_t T,
                  int64_t n_in, int64_t r, int64_t n_out, const Compute& cx,
                  std::vector<Real>& scratch) {
  if (scratch.size() < static_cast<size_t>(T * r)) scratch.resize(static_cast<size_t>(T * r));
  Real* u = scratch.data();  // (T, r)
  // u(t, k) = Σ_i x(t, i) · A(k, i)
  gemm_any<Real>(u, r, {x, n_in, 1}, {a, 1, n_in}, T, r, n_in, false, cx);
  for (int64_t i = 0; i < T * r; ++i) u[i] *= scale;
  // y(t, o) += Σ_k s·u(t, k) · B(o, k)
  gemm_any<Real>(y, n_out, {u, r, 1}, {b, 1, r}, T, n_out, r, true, cx);
}

template <typename Real>
void lora_backward(Real* dx, Real* da, Real* db, const Real* dy, const Real* x, const Real* a,
                   const Real* b, Real scale, int64_t T, int64_t n_in, int64_t r, int64_t n_out,
                   const Compute& cx, std::vector<Real>& scratch) {
  if (scratch.size() < static_cast<size_t>(2 * T * r))
    scratch.resize(static_cast<size_t>(2 * T * r));
  Real* u = scratch.data();  // (T, r) s · x·Aᵀ
  Real* du = u + T * r;      // (T, r)
  if (db) {
    gemm_any<Real>(u, r, {x, n_in, 1}, {a, 1, n_in}, T, r, n_in, false, cx);
    for (int64_t i = 0; i < T * r; ++i) u[i] *= scale;
    // dB(o, k) += Σ_t dy(t, o) · s·u(t, k)
    gemm_any<Real>(db, r, {dy, 1, n_out}, {u, r, 1}, n_out, r, T, true, cx);
  }
  if (!da && !dx) return;
  // du(t, k) = s · Σ_o dy(t, o) · B(o, k)
  gemm_any<Real>(du, r, {dy, n_out, 1}, {b, r, 1}, T, r, n_out, false, cx);
  for (int64_t i = 0; i < T * r; ++i) du[i] *= scale;
  // dA(k, i) += Σ_t du(t, k) · x(t, i)
  if (da) gemm_any<Real>(da, n_in, {du, 1, r}, {x, n_in, 1}, r, n_in, T, true, cx);
  // dx(t, i) += Σ_k du(t, k) · A(k, i)
  if (dx) gemm_any<Real>(dx, n_in, {du, r, 1}, {a, n_in, 1}, T, n_in, r, true, cx);
}

template void lora_forward<float>(float*, const float*, const float*, const float*, float, int64_t,
                                  int64_t, int64_t, int64_t, const Compute&, std::vector<float>&);
template void lora_forward<double>(double*, const double*, const double*, const double*, double,
                                   int64_t, int64_t, int64_t, int64_t, const Compute&,
                                   std::vector<double>&);
template void lora_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                   const float*, float, int64_t, int64_t, int64_t, int64_t,
                                   const Compute&, std::vector<float>&);
template void lora_backward<double>(double*, double*, double*, const double*, const double*,
                                    const double*, const double*, double, int64_t, int64_t, int64_t,
                                    int64_t, const Compute&, std::vector<double>&);

}  // namespace toy
