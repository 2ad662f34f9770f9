#include "kernels/attention_backward.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/linear_backward.h"

namespace toy {
namespace {

void check_dims(const AttentionDims& d) {
  TOY_CHECK(d.n_head_kv > 0 && d.n_head % d.n_head_kv == 0, "n_head ", d.n_head,
            " is not a multiple of n_head_kv ", d.n_head_kv);
}

// exp(x - shift) over n values: the backend's vector exp for float, std::exp for
// double (gradient checks).
void exp_shifted(const cpu::Backend& cpu, float* y, const float* x, float shift, int64_t n) {
  cpu.exp_shifted(y, x, shift, n);
}
void exp_shifted(const cpu::Backend&, double* y, const double* x, double shift, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - shift);
}

// The first key query i may see: 0 under the plain causal mask, else the first
// position of i's segment (keys between it and i may still belong to others when
// segments are not contiguous; the callers test each one), and no earlier than
// the sliding window allows (the window counts rows, which are consecutive
// positions of one example in packed rows too).
int64_t first_visible(const int32_t* seg, int64_t i, int64_t window) {
  int64_t lo = first_visible_key(i, window);
  if (!seg) return lo;
  while (seg[lo] != seg[i]) ++lo;
  return lo;
}

// In place on scores (T, T): scale, softcap (cap > 0), mask and softmax of each
// row. `seg` is one sequence's segment ids (T) or nullptr. Masked entries become
// exactly 0, which is what lets the backward treat P as the whole mask.
template <typename Real>
void masked_softmax(const cpu::Backend& cpu, Real* scores, int64_t T, Real scale, Real cap,
                    int64_t window, const int32_t* seg) {
  for (int64_t i = 0; i < T; ++i) {
    Real* p = scores + i * T;
    const int64_t lo = first_visible(seg, i, window);
    auto visible = [&](int64_t j) { return !seg || seg[j] == seg[i]; };
    Real max_score = -INFINITY;
    for (int64_t j = lo; j <= i; ++j) {
      if (!visible(j)) continue;
      p[j] *= scale;
      if (cap > 0) p[j] = cap * std::tanh(p[j] / cap);
      max_score = std::max(max_score, p[j]);
    }
    // Masked keys inside [lo, i] go through exp too (one vector call) and are
    // overwritten with 0 below, so their values never matter.
    for (int64_t j = lo; j <= i; ++j)
      if (!visible(j)) p[j] = max_score;
    exp_shifted(cpu, p + lo, p + lo, max_score, i + 1 - lo);
    Real sum = 0;
    for (int64_t j = lo; j <= i; ++j) {
      if (!visible(j)) p[j] = Real(0);
      sum += p[j];
    }
    const Real inv = Real(1) / sum;
    for (int64_t j = lo; j <= i; ++j) p[j] *= inv;
    std::fill(p, p + lo, Real(0));
    std::fill(p + i + 1, p + T, Real(0));
  }
}

// The causal mask makes the upper triangle of every (T, T) product zero, so the products
// run by blocks of queries (rows [i0, i1) need keys [0, i1) only) or, for the products
// summed over queries (dK, dV), by blocks of keys (keys [j0, j1) get queries [j0, T) only):
// about half the multiply-adds at T = 256. The skipped terms are exact zeros (P and dS are 0
// there), so the sums do not change.
constexpr int64_t kCausalBlock = 32;

template <typename Fn>
void for_each_causal_block(int64_t T, Fn&& fn) {
  for (int64_t i0 = 0; i0 < T; i0 += kCausalBlock) fn(i0, std::min(T, i0 + kCausalBlock));
}

}  // namespace

// Per (sequence b, query head h): S = Q_h·K_gᵀ, P = softmax(scale·S) under the
// causal (or block-causal) mask, O_h = P·V_g — three matrix products per head on
// one thread.
template <typename Real>
void attention_forward_train(Real* out, Real* probs, const Real* q, const Real* k, const Real* v,
                             const AttentionDims& d, const Compute& cx, const int32_t* segment) {
  check_dims(d);
  const int64_t T = d.n_pos, D = d.head_dim, group = d.n_head / d.n_head_kv;
  const int64_t qs = d.n_head * D, kvs = d.n_head_kv * D;  // row strides
  cx.parallel_for(d.n_seq * d.n_head_kv, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / d.n_head_kv, g = task % d.n_head_kv;
      const Real* kg = k + b * T * kvs + g * D;  // (T, D) rows kvs apart
      const Real* vg = v + b * T * kvs + g * D;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const Real* qh = q + b * T * qs + h * D;       // (T, D) rows qs apart
        Real* p = probs + (b * d.n_head + h) * T * T;  // (T, T)
        Real* oh = out + b * T * qs + h * D;
        for_each_causal_block(T, [&](int64_t i0, int64_t i1) {  // S rows i0..i1, keys < i1
          gemm_in_thread<Real>(cx.cpu, p + i0 * T, T, {qh + i0 * qs, qs, 1}, {kg, 1, kvs}, i1 - i0,
                               i1, D, false, d.inputs);
        });
        masked_softmax(cx.cpu, p, T, Real(d.scale), Real(d.softcap), d.window,
                       segment ? segment + b * T : nullptr);
        for_each_causal_block(T, [&](int64_t i0, int64_t i1) {  // O rows i0..i1
          gemm_in_thread<Real>(cx.cpu, oh + i0 * qs, qs, {p + i0 * T, T, 1}, {vg, kvs, 1}, i1 - i0,
                               D, i1, false, d.inputs);
        });
      }
    }
  });
}

// Per (b, h), with dP, dS (T, T) scratch:
//   dP = dO_h·V_gᵀ;  dV_g += Pᵀ·dO_h;  dS = scale·P⊙(dP − rowsum(P⊙dP))⊙(1 − (Y/c)²);
//   dQ_h += dS·K_g;  dK_g += dSᵀ·Q_h.
// The softcap factor (Y = c·tanh(scale·Q_h·K_gᵀ/c)) is 1 without a softcap; with
// one, Y is recomputed into a second (T, T) scratch — one more product per head
// instead of saving a second (B, H, T, T) tensor.
// Masked keys have P = 0, hence dS = 0: the mask needs no other handling here;
// `segment` and `window` only narrow each row to the keys it can see.
template <typename Real>
void attention_backward(Real* dq, Real* dk, Real* dv, const Real* dout, const Real* q,
                        const Real* k, const Real* v, const Real* probs, const AttentionDims& d,
                        const Compute& cx, const int32_t* segment) {
  check_dims(d);
  const int64_t T = d.n_pos, D = d.head_dim, group = d.n_head / d.n_head_kv;
  const int64_t qs = d.n_head * D, kvs = d.n_head_kv * D;
  const Real scale = Real(d.scale), cap = Real(d.softcap);
  cx.parallel_for(d.n_seq * d.n_head_kv, [&](int64_t begin, int64_t end) {
    std::vector<Real> ds(static_cast<size_t>(T * T));                // (T, T)
    std::vector<Real> ys(cap > 0 ? static_cast<size_t>(T * T) : 0);  // (T, T) raw scores
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / d.n_head_kv, g = task % d.n_head_kv;
      const Real* kg = k + b * T * kvs + g * D;
      const Real* vg = v + b * T * kvs + g * D;
      Real* dkg = dk + b * T * kvs + g * D;
      Real* dvg = dv + b * T * kvs + g * D;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const Real* p = probs + (b * d.n_head + h) * T * T;
        const Real* qh = q + b * T * qs + h * D;
        const Real* doh = dout + b * T * qs + h * D;
        Real* dqh = dq + b * T * qs + h * D;
        for_each_causal_block(T, [&](int64_t i0, int64_t i1) {
          // dP rows i0..i1 (keys < i1)
          gemm_in_thread<Real>(cx.cpu, ds.data() + i0 * T, T, {doh + i0 * qs, qs, 1}, {vg, 1, kvs},
                               i1 - i0, i1, D, false, d.inputs);
          if (cap > 0)
            gemm_in_thread<Real>(cx.cpu, ys.data() + i0 * T, T, {qh + i0 * qs, qs, 1}, {kg, 1, kvs},
                                 i1 - i0, i1, D, false, d.inputs);
        });
        for_each_causal_block(T, [&](int64_t j0, int64_t j1) {
          // dV keys j0..j1 += Pᵀ (queries ≥ j0) · dO
          gemm_in_thread<Real>(cx.cpu, dvg + j0 * kvs, kvs, {p + j0 * T + j0, 1, T},
                               {doh + j0 * qs, qs, 1}, j1 - j0, D, T - j0, true, d.inputs);
        });
        const int32_t* seg = segment ? segment + b * T : nullptr;
        for (int64_t i = 0; i < T; ++i) {
          const Real* pi = p + i * T;
          Real* row = ds.data() + i * T;
          const int64_t lo = first_visible(seg, i, d.window);
          Real weighted = 0;  // Σ_j P_ij dP_ij
          for (int64_t j = lo; j <= i; ++j) weighted += pi[j] * row[j];
          for (int64_t j = lo; j <= i; ++j) row[j] = scale * pi[j] * (row[j] - weighted);
          if (cap > 0) {
            // d/ds [c·tanh(s/c)] = 1 − tanh²(s/c), s = scale·q·k.
            const Real* si = ys.data() + i * T;
            for (int64_t j = lo; j <= i; ++j) {
              const Real t = std::tanh(scale * si[j] / cap);
              row[j] *= Real(1) - t * t;
            }
          }
          std::fill(row, row + lo, Real(0));
          std::fill(row + i + 1, row + T, Real(0));
        }
        for_each_causal_block(T, [&](int64_t i0, int64_t i1) {  // dQ rows i0..i1
          gemm_in_thread<Real>(cx.cpu, dqh + i0 * qs, qs, {ds.data() + i0 * T, T, 1}, {kg, kvs, 1},
                               i1 - i0, D, i1, true, d.inputs);
        });
        for_each_causal_block(T, [&](int64_t j0, int64_t j1) {  // dK keys j0..j1
          gemm_in_thread<Real>(cx.cpu, dkg + j0 * kvs, kvs, {ds.data() + j0 * T + j0, 1, T},
                               {qh + j0 * qs, qs, 1}, j1 - j0, D, T - j0, true, d.inputs);
        });
      }
    }
  });
}

template void attention_forward_train<float>(float*, float*, const float*, const float*,
                                             const float*, const AttentionDims&, const Compute&,
                                             const int32_t*);
template void attention_forward_train<double>(double*, double*, const double*, const double*,
                                              const double*, const AttentionDims&, const Compute&,
                                              const int32_t*);
template void attention_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*,
                                        const AttentionDims&, const Compute&, const int32_t*);
template void attention_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*,
                                         const AttentionDims&, const Compute&, const int32_t*);

}  // namespace toy
