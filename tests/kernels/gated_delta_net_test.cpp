// Gated delta-net: the chunked (WY/UT) form and the per-token step against the
// double-precision recurrence, over odd sizes, chunk boundaries, both gate kinds
// and 1..3 threads; the backward against central differences in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "kernels/gated_delta_net.h"
#include "kernels/gated_delta_net_backward.h"

namespace toy {
namespace {

struct Case {
  int64_t n_seq, n_tok, n_k_head, n_v_head, d_k, d_v;
  bool kda;
};

// Inputs of one case: q | k | v in one row-strided buffer as the model's conv output.
template <typename Real>
struct Inputs {
  GdnDims d;
  std::vector<Real> qkv, g, beta, state;
  const Real* q() const { return qkv.data(); }
  const Real* k() const { return qkv.data() + d.n_k_head * d.d_k; }
  const Real* v() const { return qkv.data() + 2 * d.n_k_head * d.d_k; }
};

template <typename Real>
Inputs<Real> make_inputs(const Case& c, uint32_t seed, bool zero_state = false) {
  Inputs<Real> in;
  in.d = {c.n_seq,
          c.n_tok,
          c.n_k_head,
          c.n_v_head,
          c.d_k,
          c.d_v,
          2 * c.n_k_head * c.d_k + c.n_v_head * c.d_v,
          c.kda,
          1e-6f};
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int64_t N = in.d.rows();
  in.qkv.resize(static_cast<size_t>(N * in.d.row_stride));
  for (Real& x : in.qkv) x = Real(normal(rng));
  in.g.resize(static_cast<size_t>(N * in.d.gate_width()));
  // Decays from e^{-3} to ~1, as −exp(A)·softplus(·) gives.
  for (Real& x : in.g) x = Real(-3.0 * unit(rng) * unit(rng));
  in.beta.resize(static_cast<size_t>(N * c.n_v_head));
  for (Real& x : in.beta) x = Real(unit(rng));
  in.state.assign(static_cast<size_t>(in.d.state_floats()), Real(0));
  if (!zero_state)
    for (Real& x : in.state) x = Real(0.3 * normal(rng));
  return in;
}

// max |a − b| / max |b|.
double relative_error(const std::vector<float>& a, const std::vector<double>& b) {
  double diff = 0, scale = 1e-12;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}

const Case kCases[] = {
    {1, 1, 1, 1, 5, 3, false},   {1, 1, 1, 1, 5, 3, true},      {2, 37, 1, 2, 7, 5, false},
    {2, 37, 1, 2, 7, 5, true},   {1, 130, 2, 2, 16, 16, false}, {1, 130, 2, 2, 16, 16, true},
    {3, 65, 1, 3, 9, 11, false}, {1, 64, 1, 1, 32, 24, true},   {1, 200, 1, 1, 64, 64, false},
};

struct Reference {
  std::vector<double> out, state;
};

Reference reference(const Inputs<double>& in) {
  Reference r{std::vector<double>(static_cast<size_t>(in.d.rows() * in.d.n_v_head * in.d.d_v)),
              in.state};
  gdn_reference<double>(r.out.data(), r.state.data(), in.q(), in.k(), in.v(), in.g.data(),
                        in.beta.data(), in.d);
  return r;
}

TEST(GatedDeltaNet, ChunkedAndRecurrentMatchTheReference) {
  for (const Case& c : kCases) {
    const auto in = make_inputs<double>(c, 7);
    const Reference ref = reference(in);
    Inputs<float> f;
    f.d = in.d;
    f.qkv.assign(in.qkv.begin(), in.qkv.end());
    f.g.assign(in.g.begin(), in.g.end());
    f.beta.assign(in.beta.begin(), in.beta.end());
    for (int n_threads : {1, 2, 3}) {
      ThreadPool pool(n_threads);
      const Compute cx{pool, cpu::host_backend()};
      std::vector<float> scratch(
          static_cast<size_t>(gdn_scratch_floats(f.d, kGdnChunk, n_threads)));
      for (int64_t chunk : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{16}, kGdnChunk}) {
        std::vector<float> out(ref.out.size(), -1.0f);
        std::vector<float> state(in.state.begin(), in.state.end());
        if (chunk == 0) {
          gdn_recurrent(out.data(), state.data(), f.q(), f.k(), f.v(), f.g.data(), f.beta.data(),
                        f.d, scratch.data(), cx);
        } else {
          gdn_chunked(out.data(), state.data(), f.q(), f.k(), f.v(), f.g.data(), f.beta.data(), f.d,
                      chunk, scratch.data(), cx);
        }
        const std::string what = "tokens " + std::to_string(c.n_tok) + " d_k " +
                                 std::to_string(c.d_k) + (c.kda ? " kda" : " scalar") + " chunk " +
                                 std::to_string(chunk) + " threads " + std::to_string(n_threads);
        EXPECT_LE(relative_error(out, ref.out), 1e-5) << what;
        EXPECT_LE(relative_error(state, ref.state), 1e-5) << what;
      }
    }
  }
}

// Prefill then decode: a prompt through the chunked form and the rest one token
// at a time from the state it left gives the outputs of the whole sequence.
TEST(GatedDeltaNet, ChunkedPrefixThenStepsEqualsOneCall) {
  const Case c{1, 150, 2, 4, 12, 10, false};
  const auto in = make_inputs<double>(c, 11, /*zero_state=*/true);
  const Reference ref = reference(in);
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const int64_t prompt = 97, width = c.n_v_head * c.d_v, stride = in.d.row_stride;
  std::vector<float> qkv(in.qkv.begin(), in.qkv.end()), g(in.g.begin(), in.g.end()),
      beta(in.beta.begin(), in.beta.end()), state(in.state.size(), 0.0f);
  std::vector<float> out(ref.out.size());
  GdnDims d = in.d;
  std::vector<float> scratch(static_cast<size_t>(gdn_scratch_floats(d, kGdnChunk, 2)));
  d.n_tok = prompt;
  // The prompt through the chunked form itself (gdn_forward would pick the recurrence).
  gdn_chunked(out.data(), state.data(), qkv.data(), qkv.data() + c.n_k_head * c.d_k,
              qkv.data() + 2 * c.n_k_head * c.d_k, g.data(), beta.data(), d, kGdnChunk,
              scratch.data(), cx);
  d.n_tok = 1;
  for (int64_t t = prompt; t < c.n_tok; ++t) {
    const float* row = qkv.data() + t * stride;
    gdn_forward(out.data() + t * width, state.data(), row, row + c.n_k_head * c.d_k,
                row + 2 * c.n_k_head * c.d_k, g.data() + t * c.n_v_head,
                beta.data() + t * c.n_v_head, d, scratch.data(), cx);
  }
  EXPECT_LE(relative_error(out, ref.out), 1e-5);
}

TEST(GatedDeltaNet, BadDimensionsAreErrors) {
  GdnDims d{1, 4, 3, 4, 8, 8, 64, false, 1e-6f};
  EXPECT_THROW(gdn_check_dims(d), Error);
  d.n_k_head = 2;
  EXPECT_NO_THROW(gdn_check_dims(d));
  d.n_tok = 0;
  EXPECT_THROW(gdn_check_dims(d), Error);
}

// Σ r·out of the double reference from a zero state.
double loss(const Inputs<double>& in, const std::vector<double>& r) {
  std::vector<double> out(r.size()), state(in.state.size(), 0.0);
  gdn_reference<double>(out.data(), state.data(), in.q(), in.k(), in.v(), in.g.data(),
                        in.beta.data(), in.d);
  double l = 0;
  for (size_t i = 0; i < r.size(); ++i) l += r[i] * out[i];
  return l;
}

void expect_gradient(std::vector<double>& x, const std::vector<double>& analytic,
                     const Inputs<double>& in, const std::vector<double>& r, const char* what) {
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i], h = 1e-6;
    x[i] = saved + h;
    const double plus = loss(in, r);
    x[i] = saved - h;
    const double minus = loss(in, r);
    x[i] = saved;
    const double numeric = (plus - minus) / (2 * h);
    EXPECT_NEAR(analytic[i], numeric, 1e-7 * std::max({1.0, std::abs(numeric)}))
        << what << "[" << i << "]";
  }
}

TEST(GatedDeltaNet, BackwardMatchesFiniteDifferences) {
  for (const Case& c : {Case{2, 9, 1, 2, 5, 4, false}, Case{1, 11, 2, 2, 4, 3, true},
                        Case{1, 7, 1, 1, 6, 6, false}}) {
    auto in = make_inputs<double>(c, 3, /*zero_state=*/true);
    std::mt19937 rng(5);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> r(static_cast<size_t>(in.d.rows() * c.n_v_head * c.d_v));
    for (double& x : r) x = normal(rng);
    std::vector<double> dqkv(in.qkv.size(), 0.0), dg(in.g.size(), 0.0), db(in.beta.size(), 0.0);
    ThreadPool pool(2);
    const Compute cx{pool, cpu::host_backend()};
    const int64_t ko = c.n_k_head * c.d_k, vo = 2 * ko;
    gdn_backward<double>(dqkv.data(), dqkv.data() + ko, dqkv.data() + vo, dg.data(), db.data(),
                         r.data(), in.q(), in.k(), in.v(), in.g.data(), in.beta.data(), in.d, cx);
    expect_gradient(in.qkv, dqkv, in, r, c.kda ? "kda dqkv" : "dqkv");
    expect_gradient(in.g, dg, in, r, c.kda ? "kda dg" : "dg");
    expect_gradient(in.beta, db, in, r, c.kda ? "kda dbeta" : "dbeta");
  }
}

// The float backward (what training runs) agrees with the double one.
TEST(GatedDeltaNet, FloatBackwardMatchesDouble) {
  const Case c{2, 70, 1, 2, 16, 8, false};
  auto in = make_inputs<double>(c, 9, true);
  std::vector<double> r(static_cast<size_t>(in.d.rows() * c.n_v_head * c.d_v));
  std::mt19937 rng(2);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (double& x : r) x = normal(rng);
  ThreadPool pool(3);
  const Compute cx{pool, cpu::host_backend()};
  const int64_t ko = c.n_k_head * c.d_k, vo = 2 * ko;
  std::vector<double> dqkv(in.qkv.size(), 0.0), dg(in.g.size(), 0.0), db(in.beta.size(), 0.0);
  gdn_backward<double>(dqkv.data(), dqkv.data() + ko, dqkv.data() + vo, dg.data(), db.data(),
                       r.data(), in.q(), in.k(), in.v(), in.g.data(), in.beta.data(), in.d, cx);
  std::vector<float> fqkv(in.qkv.begin(), in.qkv.end()), fg(in.g.begin(), in.g.end()),
      fb(in.beta.begin(), in.beta.end()), fr(r.begin(), r.end());
  std::vector<float> dfqkv(fqkv.size(), 0.0f), dfg(fg.size(), 0.0f), dfb(fb.size(), 0.0f);
  gdn_backward<float>(dfqkv.data(), dfqkv.data() + ko, dfqkv.data() + vo, dfg.data(), dfb.data(),
                      fr.data(), fqkv.data(), fqkv.data() + ko, fqkv.data() + vo, fg.data(),
                      fb.data(), in.d, cx);
  EXPECT_LE(relative_error(dfqkv, dqkv), 1e-4);
  EXPECT_LE(relative_error(dfg, dg), 1e-4);
  EXPECT_LE(relative_error(dfb, db), 1e-4);
}

}  // namespace
}  // namespace toy
