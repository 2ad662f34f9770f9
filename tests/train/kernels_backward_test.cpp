// Every backward kernel against central finite differences in double (the
// kernels' scalar references instantiated for double), on odd sizes; and the
// float training paths against those references.
#include <gtest/gtest.h>

#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "support/backends.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "grad_check.h"
#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/attention_backward.h"
#include "kernels/cross_entropy_backward.h"
#include "kernels/embedding_backward.h"
#include "kernels/geglu_backward.h"
#include "kernels/linear_backward.h"
#include "kernels/moe.h"
#include "kernels/rmsnorm.h"
#include "kernels/rmsnorm_backward.h"
#include "kernels/rope.h"
#include "kernels/rope_backward.h"
#include "kernels/softcap_backward.h"
#include "kernels/swiglu_backward.h"
#include "quant/fp16.h"

namespace toy {
namespace {

using testing::expect_matches_finite_differences;
using testing::random_values;
using testing::weighted_sum;

TEST(BackwardKernels, RmsNormMatchesFiniteDifferences) {
  const int64_t rows = 3, n = 7;
  const float eps = 1e-5f;
  std::vector<double> x = random_values(rows * n, 1), w = random_values(n, 2),
                      r = random_values(rows * n, 3);
  std::vector<double> y(rows * n);
  auto loss = [&] {
    rmsnorm_reference(y.data(), x.data(), w.data(), rows, n, eps);
    return weighted_sum(r, y.data());
  };
  std::vector<double> dx(rows * n, 0.0), dw(n, 0.0);
  rmsnorm_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), rows, n, eps);
  expect_matches_finite_differences(x, dx, loss, "rmsnorm dx");
  expect_matches_finite_differences(w, dw, loss, "rmsnorm dw");
}

TEST(BackwardKernels, RmsNormFloatForwardMatchesReference) {
  const int64_t rows = 5, n = 37;
  std::vector<float> x = testing::to_float(random_values(rows * n, 4)),
                     w = testing::to_float(random_values(n, 5));
  std::vector<float> ours(rows * n), ref(rows * n);
  rmsnorm_forward(ours.data(), x.data(), w.data(), rows, n, 1e-6f);
  rmsnorm_reference(ref.data(), x.data(), w.data(), rows, n, 1e-6f);
  for (size_t i = 0; i < ours.size(); ++i)
    EXPECT_NEAR(ours[i], ref[i], 1e-5f * std::abs(ref[i]) + 1e-6f);
}

class RopeBackward : public ::testing::TestWithParam<RopeMode> {};

TEST_P(RopeBackward, MatchesFiniteDifferencesAndInvertsTheForward) {
  const int64_t rows = 5, n_heads = 3, head_dim = 10;
  RopeParams p;
  p.mode = GetParam();
  p.n_rot = 8;  // rotate fewer dims than head_dim: the rest pass through
  p.head_dim = head_dim;
  p.freq_base = 10000.0f;
  const RopeTable<double> table = make_rope_table<double>(rows, p);
  std::vector<int32_t> pos = {0, 3, 1, 4, 2};
  std::vector<double> x = random_values(rows * n_heads * head_dim, 6),
                      r = random_values(rows * n_heads * head_dim, 7);
  auto loss = [&] {
    std::vector<double> y = x;
    rope_rotate(y.data(), pos.data(), rows, n_heads, table, +1);
    return weighted_sum(r, y.data());
  };
  std::vector<double> dx = r;
  rope_rotate(dx.data(), pos.data(), rows, n_heads, table, -1);
  expect_matches_finite_differences(x, dx, loss, "rope dx");

  // The float table/rotation reproduces the inference kernel's rope_forward.
  const RopeTable<float> ftable = make_rope_table<float>(rows, p);
  std::vector<int32_t> seq_pos = {0, 1, 2, 3, 4};
  std::vector<float> a = testing::to_float(x), b = a;
  rope_forward(a.data(), rows, n_heads, 0, p);
  rope_rotate(b.data(), seq_pos.data(), rows, n_heads, ftable, +1);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6f);
  rope_rotate(b.data(), seq_pos.data(), rows, n_heads, ftable, -1);  // undoes it
  for (size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(b[i], float(x[i]), 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(BothModes, RopeBackward,
                         ::testing::Values(RopeMode::AdjacentPairs, RopeMode::HalfSplit));

TEST(BackwardKernels, CausalAttentionWithGqaMatchesFiniteDifferences) {
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const AttentionDims d{2, 5, 6, 2, 3, 1.0 / std::sqrt(3.0)};  // B=2, T=5, 6 heads over 2 KV heads
  const int64_t rows = d.n_seq * d.n_pos, qn = rows * d.n_head * d.head_dim,
                kvn = rows * d.n_head_kv * d.head_dim;
  std::vector<double> q = random_values(qn, 8), k = random_values(kvn, 9),
                      v = random_values(kvn, 10), r = random_values(qn, 11);
  std::vector<double> out(qn), probs(d.n_seq * d.n_head * d.n_pos * d.n_pos);
  auto loss = [&] {
    attention_forward_train(out.data(), probs.data(), q.data(), k.data(), v.data(), d, cx);
    return weighted_sum(r, out.data());
  };
  loss();
  std::vector<double> dq(qn, 0.0), dk(kvn, 0.0), dv(kvn, 0.0);
  attention_backward(dq.data(), dk.data(), dv.data(), r.data(), q.data(), k.data(), v.data(),
                     probs.data(), d, cx);
  expect_matches_finite_differences(q, dq, loss, "attention dq");
  expect_matches_finite_differences(k, dk, loss, "attention dk");
  expect_matches_finite_differences(v, dv, loss, "attention dv");
  // Causality: the last position of a sequence does not influence earlier outputs.
  std::vector<double> before = out;
  v[(d.n_pos - 1) * d.n_head_kv * d.head_dim] += 1.0;
  loss();
  for (int64_t h = 0; h < d.n_head; ++h) EXPECT_EQ(out[h * d.head_dim], before[h * d.head_dim]);
}

// Gemma 2's attention: a sliding window narrower than T and a score softcap
// small enough that tanh bends (scores here reach several times the cap), on
// plain and on packed (block-causal) rows.
TEST(BackwardKernels, WindowedSoftcappedAttentionMatchesFiniteDifferences) {
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  AttentionDims d{2, 7, 4, 2, 3, 0.8};
  d.softcap = 1.5;
  d.window = 3;
  const int64_t rows = d.n_seq * d.n_pos, qn = rows * d.n_head * d.head_dim,
                kvn = rows * d.n_head_kv * d.head_dim;
  // Sequence 0 plain-looking segments {0…}, sequence 1 two examples of 4 and 3 rows.
  const std::vector<int32_t> segment = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1};
  for (const int32_t* seg : {static_cast<const int32_t*>(nullptr), segment.data()}) {
    std::vector<double> q = random_values(qn, 30, 2.0), k = random_values(kvn, 31, 2.0),
                        v = random_values(kvn, 32), r = random_values(qn, 33);
    std::vector<double> out(qn), probs(d.n_seq * d.n_head * d.n_pos * d.n_pos);
    auto loss = [&] {
      attention_forward_train(out.data(), probs.data(), q.data(), k.data(), v.data(), d, cx, seg);
      return weighted_sum(r, out.data());
    };
    loss();
    // The window: query 5 of sequence 0, head 0, sees keys 3..5 only.
    const double* p = probs.data() + 5 * d.n_pos;
    EXPECT_EQ(p[2], 0.0);
    EXPECT_GT(p[3], 0.0);
    std::vector<double> dq(qn, 0.0), dk(kvn, 0.0), dv(kvn, 0.0);
    attention_backward(dq.data(), dk.data(), dv.data(), r.data(), q.data(), k.data(), v.data(),
                       probs.data(), d, cx, seg);
    const char* what = seg ? "packed " : "plain ";
    expect_matches_finite_differences(q, dq, loss, std::string(what) + "softcap attention dq");
    expect_matches_finite_differences(k, dk, loss, std::string(what) + "softcap attention dk");
    expect_matches_finite_differences(v, dv, loss, std::string(what) + "softcap attention dv");
  }
}

// The training attention with softcap and window against the inference kernel
// (attention_forward over an F32 "cache" of the same rows), one sequence.
TEST(BackwardKernels, WindowedSoftcappedTrainingAttentionMatchesInference) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  AttentionParams ap;
  ap.n_head = 4;
  ap.n_head_kv = 2;
  ap.head_dim = 8;
  ap.scale = 0.35f;
  ap.softcap = 2.0f;
  ap.window = 4;
  const AttentionDims d{1, 9, 4, 2, 8, double(ap.scale), double(ap.softcap), ap.window};
  const int64_t T = d.n_pos, qn = T * 32, kvn = T * 16;
  const std::vector<float> q = testing::to_float(random_values(qn, 34, 2.0)),
                           k = testing::to_float(random_values(kvn, 35, 2.0)),
                           v = testing::to_float(random_values(kvn, 36));
  std::vector<float> ours(qn), probs(d.n_head * T * T), ref(qn);
  attention_forward_train(ours.data(), probs.data(), q.data(), k.data(), v.data(), d, cx);
  const KvRows keys{k.data(), DType::F32, 16 * sizeof(float)};
  const KvRows values{v.data(), DType::F32, 16 * sizeof(float)};
  std::vector<float> scratch(static_cast<size_t>(attention_scratch_floats(cx.size(), T, ap)));
  attention_forward(ref.data(), q.data(), keys, values, T, 0, T, ap, scratch.data(), cx);
  for (int64_t i = 0; i < qn; ++i) EXPECT_NEAR(ours[i], ref[i], 1e-5f) << i;
}

TEST(BackwardKernels, GegluMatchesFiniteDifferences) {
  const int64_t n = 15;
  std::vector<double> g = random_values(n, 40, 2.0), u = random_values(n, 41),
                      r = random_values(n, 42), h(n);
  auto loss = [&] {
    geglu_reference(h.data(), g.data(), u.data(), n);
    return weighted_sum(r, h.data());
  };
  std::vector<double> dg(n, 0.0), du(n, 0.0);
  geglu_backward(dg.data(), du.data(), r.data(), g.data(), u.data(), n);
  expect_matches_finite_differences(g, dg, loss, "geglu dg");
  expect_matches_finite_differences(u, du, loss, "geglu du");
  // The forward the model runs (gated_activation, float) is the reference's formula.
  std::vector<float> fg = testing::to_float(g), fu = testing::to_float(u), ours(n), ref(n);
  gated_activation(ours.data(), fg.data(), fu.data(), n, Activation::GeluTanh);
  geglu_reference(ref.data(), fg.data(), fu.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(ours[i], ref[i], 1e-6f * (1 + std::abs(ref[i])));
  // And the float backward is the double one rounded.
  std::vector<float> fdg(n, 0.0f), fdu(n, 0.0f), fr = testing::to_float(r);
  geglu_backward(fdg.data(), fdu.data(), fr.data(), fg.data(), fu.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(fdg[i], dg[i], 1e-5 * (1 + std::abs(dg[i])));
    EXPECT_NEAR(fdu[i], du[i], 1e-5 * (1 + std::abs(du[i])));
  }
}

TEST(BackwardKernels, SoftcapMatchesFiniteDifferences) {
  const int64_t n = 11;
  const double cap = 1.7;  // inputs up to ~3·cap: deep in tanh's bend
  std::vector<double> x = random_values(n, 43, 3.0), r = random_values(n, 44), y(n);
  auto loss = [&] {
    y = x;
    softcap_reference(y.data(), n, cap);
    return weighted_sum(r, y.data());
  };
  loss();
  std::vector<double> dx = r;
  softcap_backward(dx.data(), y.data(), n, cap);  // from the output alone
  expect_matches_finite_differences(x, dx, loss, "softcap dx");
  std::vector<float> ours = testing::to_float(x), ref = ours;
  softcap(ours.data(), n, float(cap));
  softcap_reference(ref.data(), n, cap);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(ours[i], ref[i], 1e-6f);
}

TEST(BackwardKernels, SwigluMatchesFiniteDifferences) {
  const int64_t n = 13;
  std::vector<double> g = random_values(n, 12, 2.0), u = random_values(n, 13),
                      r = random_values(n, 14), h(n);
  auto loss = [&] {
    swiglu_reference(h.data(), g.data(), u.data(), n);
    return weighted_sum(r, h.data());
  };
  std::vector<double> dg(n, 0.0), du(n, 0.0);
  swiglu_backward(cpu::host_backend(), dg.data(), du.data(), r.data(), g.data(), u.data(), n);
  expect_matches_finite_differences(g, dg, loss, "swiglu dg");
  expect_matches_finite_differences(u, du, loss, "swiglu du");
  std::vector<float> fg = testing::to_float(g), fu = testing::to_float(u), ours(n), ref(n);
  gated_activation(ours.data(), fg.data(), fu.data(), n, Activation::Silu);
  swiglu_reference(ref.data(), fg.data(), fu.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(ours[i], ref[i], 1e-6f * (1 + std::abs(ref[i])));
}

TEST(BackwardKernels, EmbeddingMatchesFiniteDifferences) {
  const int64_t n_vocab = 7, n_embd = 5, n_tokens = 9;
  std::vector<int32_t> tokens = {3, 0, 6, 3, 3, 1, 6, 2, 0};  // repeats accumulate
  std::vector<double> table = random_values(n_vocab * n_embd, 15),
                      r = random_values(n_tokens * n_embd, 16), out(n_tokens * n_embd);
  auto loss = [&] {
    embedding_forward_train(out.data(), table.data(), tokens.data(), n_tokens, n_embd, n_vocab);
    return weighted_sum(r, out.data());
  };
  std::vector<double> dtable(n_vocab * n_embd, 0.0);
  embedding_backward(dtable.data(), r.data(), tokens.data(), n_tokens, n_embd);
  expect_matches_finite_differences(table, dtable, loss, "embedding dtable");
  tokens[4] = 7;
  EXPECT_THROW(
      embedding_forward_train(out.data(), table.data(), tokens.data(), n_tokens, n_embd, n_vocab),
      Error);
}

TEST(BackwardKernels, LinearWithBiasMatchesFiniteDifferences) {
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const int64_t T = 5, n_in = 7, n_out = 3;
  std::vector<double> x = random_values(T * n_in, 17), w = random_values(n_out * n_in, 18),
                      b = random_values(n_out, 19), r = random_values(T * n_out, 20), y(T * n_out);
  auto loss = [&] {
    linear_forward(y.data(), x.data(), w.data(), b.data(), T, n_in, n_out, cx);
    return weighted_sum(r, y.data());
  };
  std::vector<double> dx(T * n_in, 0.0), dw(n_out * n_in, 0.0), db(n_out, 0.0);
  linear_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), T, n_in, n_out,
                  cx);
  expect_matches_finite_differences(x, dx, loss, "linear dx");
  expect_matches_finite_differences(w, dw, loss, "linear dW");
  expect_matches_finite_differences(b, db, loss, "linear db");
}

TEST(BackwardKernels, CrossEntropyWithIgnoredLabelsMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const int64_t rows = 5, V = 11;
  std::vector<int32_t> targets = {3, -1, 10, 0, -1};
  std::vector<double> logits = random_values(rows * V, 21, 3.0);
  auto loss = [&] {
    const CrossEntropyResult r = cross_entropy_forward(logits.data(), targets.data(), rows, V, cx);
    return r.loss_sum / double(r.counted);
  };
  std::vector<double> dlogits(rows * V);
  const CrossEntropyResult both = cross_entropy_forward_backward(
      dlogits.data(), logits.data(), targets.data(), rows, V, 1.0 / 3.0, cx);
  EXPECT_EQ(both.counted, 3);
  EXPECT_NEAR(both.loss_sum / 3.0, loss(), 1e-12);
  expect_matches_finite_differences(logits, dlogits, loss, "cross-entropy dlogits");
  for (int64_t i = 0; i < V; ++i) EXPECT_EQ(dlogits[1 * V + i], 0.0);  // ignored row
  targets[0] = int32_t(V);
  EXPECT_THROW(cross_entropy_forward(logits.data(), targets.data(), rows, V, cx), Error);
}

// The float path (the backend's vector exp, rows over threads) against the double one.
TEST(BackwardKernels, CrossEntropyFloatMatchesDouble) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const int64_t rows = 37, V = 1000;
  std::vector<int32_t> targets(rows);
  for (int64_t r = 0; r < rows; ++r) targets[r] = r % 5 == 1 ? -1 : int32_t((r * 131) % V);
  const std::vector<double> logits = random_values(rows * V, 22, 4.0);
  const std::vector<float> logits_f(logits.begin(), logits.end());
  std::vector<double> d(rows * V);
  std::vector<float> f(rows * V);
  const CrossEntropyResult rd =
      cross_entropy_forward_backward(d.data(), logits.data(), targets.data(), rows, V, 0.1, cx);
  const CrossEntropyResult rf =
      cross_entropy_forward_backward(f.data(), logits_f.data(), targets.data(), rows, V, 0.1, cx);
  const CrossEntropyResult only =
      cross_entropy_forward(logits_f.data(), targets.data(), rows, V, cx);
  EXPECT_EQ(rf.counted, rd.counted);
  EXPECT_NEAR(rf.loss_sum, rd.loss_sum, 1e-5 * rd.loss_sum);
  EXPECT_EQ(only.loss_sum, rf.loss_sum);
  for (int64_t i = 0; i < rows * V; ++i) ASSERT_NEAR(f[i], d[i], 1e-6) << i;
  // A training forward that saves its exponentials, then the backward from them: the loss
  // and the gradient of the one-call form, bit for bit (the buffer's old content is gone).
  std::vector<float> saved_exp(rows * V, 7.0f);
  std::vector<double> sums(rows);
  const SavedSoftmax<float> saved{saved_exp.data(), sums.data()};
  const CrossEntropyResult rs =
      cross_entropy_forward(logits_f.data(), targets.data(), rows, V, cx, saved);
  cross_entropy_backward_saved(saved, targets.data(), rows, V, 0.1, cx);
  EXPECT_EQ(rs.loss_sum, rf.loss_sum);
  EXPECT_EQ(saved_exp, f);
}

// The AVX-512 gemm against its scalar reference: odd sizes, every operand
// layout the linear layers use, accumulate or overwrite, 1..3 threads.
TEST(Gemm, MatchesReferenceOnOddSizesAndThreadCounts) {
  const int64_t sizes[][3] = {{1, 1, 1}, {7, 33, 5}, {9, 17, 31}, {37, 65, 129}, {130, 70, 300}};
  for (int threads = 1; threads <= 3; ++threads) {
    ThreadPool pool(threads);
    const Compute cx{pool, cpu::host_backend()};
    for (const auto& s : sizes) {
      const int64_t M = s[0], N = s[1], K = s[2];
      std::vector<float> a = testing::to_float(random_values(M * K, 22)),
                         b = testing::to_float(random_values(K * N, 23));
      for (int layout = 0; layout < 4; ++layout) {
        const bool a_t = layout & 1, b_t = layout & 2;
        MatrixRef<float> ar{a.data(), a_t ? 1 : K, a_t ? M : 1};
        MatrixRef<float> br{b.data(), b_t ? 1 : N, b_t ? K : 1};
        const int64_t ldc = N + 3;
        std::vector<float> c0 = testing::to_float(random_values(M * ldc, 24));
        for (bool accumulate : {false, true}) {
          std::vector<float> ours = c0, ref = c0;
          gemm(ours.data(), ldc, ar, br, M, N, K, accumulate, cx);
          gemm_reference(ref.data(), ldc, ar, br, M, N, K, accumulate);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const float r = ref[i * ldc + j];
              ASSERT_NEAR(ours[i * ldc + j], r, 1e-4f * (std::sqrt(float(K)) + std::abs(r)))
                  << "M=" << M << " N=" << N << " K=" << K << " layout " << layout << " threads "
                  << threads << " at " << i << "," << j;
            }
        }
      }
    }
  }
}

// GemmInputs::BF16 on every runnable backend (avx512 with AVX512_BF16 runs its BF16 dot
// products, the others round the F32 panels) against the double reference of the
// BF16-rounded inputs: only the F32 sums differ.
TEST(Gemm, Bf16InputsMatchTheReferenceOfRoundedInputsOnEveryBackend) {
  const int64_t sizes[][3] = {{1, 1, 1}, {7, 33, 5}, {9, 17, 31}, {37, 65, 257}, {130, 70, 300}};
  auto round = [](std::vector<float> v) {
    for (float& x : v) x = quant::bf16_to_f32(quant::f32_to_bf16(x));
    return v;
  };
  // With AMX the avx512 table runs its tiles; the table without them (its BF16 dot
  // products) is in the list too.
  for (const cpu::Backend* backend : testing_support::runnable_backends()) {
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      const Compute cx{pool, *backend};
      for (const auto& s : sizes) {
        const int64_t M = s[0], N = s[1], K = s[2];
        const std::vector<float> a = testing::to_float(random_values(M * K, 27)),
                                 b = testing::to_float(random_values(K * N, 28));
        const std::vector<float> ra = round(a), rb = round(b);
        for (int layout = 0; layout < 4; ++layout) {
          const bool a_t = layout & 1, b_t = layout & 2;
          const int64_t ldc = N + 1;
          std::vector<float> ours = testing::to_float(random_values(M * ldc, 29)), ref = ours;
          gemm(ours.data(), ldc, {a.data(), a_t ? 1 : K, a_t ? M : 1},
               {b.data(), b_t ? 1 : N, b_t ? K : 1}, M, N, K, true, cx, GemmInputs::BF16);
          gemm_reference(ref.data(), ldc, {ra.data(), a_t ? 1 : K, a_t ? M : 1},
                         {rb.data(), b_t ? 1 : N, b_t ? K : 1}, M, N, K, true);
          for (int64_t i = 0; i < M * ldc; ++i)
            ASSERT_NEAR(ours[i], ref[i], 2e-5f * (std::sqrt(float(K)) + std::abs(ref[i])))
                << backend->name << (backend->gemm_tile_bf16 ? " (AMX)" : "") << " M=" << M
                << " N=" << N << " K=" << K << " layout " << layout << " at " << i;
        }
      }
    }
  }
}

TEST(Gemm, IsBitIdenticalForAnyThreadCount) {
  const int64_t M = 100, N = 90, K = 300;
  std::vector<float> a = testing::to_float(random_values(M * K, 25)),
                     b = testing::to_float(random_values(K * N, 26));
  for (GemmInputs inputs : {GemmInputs::F32, GemmInputs::BF16}) {
    std::vector<float> first;
    for (int threads = 1; threads <= 3; ++threads) {
      ThreadPool pool(threads);
      const Compute cx{pool, cpu::host_backend()};
      std::vector<float> c(M * N);
      gemm(c.data(), N, {a.data(), K, 1}, {b.data(), N, 1}, M, N, K, false, cx, inputs);
      if (first.empty()) first = c;
      EXPECT_EQ(0, std::memcmp(first.data(), c.data(), c.size() * sizeof(float)))
          << threads << " threads, inputs " << static_cast<int>(inputs);
    }
  }
}

// Router backward with the top-k selection held fixed: renormalised (Mixtral, Qwen3-MoE)
// and not (OLMoE, Qwen2-MoE), against finite differences of the double moe_route; and
// the float instantiation against the double one.
TEST(BackwardKernels, MoeRouteMatchesFiniteDifferences) {
  const int64_t T = 3, X = 7, K = 3;
  for (const bool renormalize : {true, false}) {
    std::vector<double> z = random_values(T * X, 41), r = random_values(T * K, 42);
    std::vector<int32_t> ids(T * K);
    std::vector<double> w(T * K), p(T * X);
    auto route = [&] {
      p = z;
      moe_route(ids.data(), w.data(), p.data(), T, X, K, renormalize);
    };
    route();
    const std::vector<int32_t> chosen = ids;
    auto loss = [&] {
      route();
      EXPECT_EQ(ids, chosen) << "a step of h changed the selection";
      return weighted_sum(r, w.data());
    };
    std::vector<double> dz(T * X, 0.0);
    route();
    moe_route_backward(dz.data(), r.data(), p.data(), ids.data(), T, X, K, renormalize);
    expect_matches_finite_differences(z, dz, loss,
                                      renormalize ? "moe_route renormalised" : "moe_route plain");

    // float: the same routing and a gradient within float rounding of the double one.
    std::vector<float> zf = testing::to_float(z), rf = testing::to_float(r), wf(T * K);
    std::vector<float> dzf(T * X, 0.0f);
    std::vector<int32_t> idsf(T * K);
    moe_route(idsf.data(), wf.data(), zf.data(), T, X, K, renormalize);
    EXPECT_EQ(idsf, ids);
    moe_route_backward(dzf.data(), rf.data(), zf.data(), idsf.data(), T, X, K, renormalize);
    for (int64_t i = 0; i < T * X; ++i) EXPECT_NEAR(dzf[i], dz[i], 1e-5) << i;
  }
}

}  // namespace
}  // namespace toy
