// The elementwise entries and the training GEMM micro-kernel of every runnable
// CPU backend: exp against double-precision exp over odd lengths (vector body and
// tail), F16 widening against quant/fp16.h bit for bit, SwiGLU backward against
// the double formula, gemm_micro against a double sum for every edge tile, the
// GEMM's transposing packs against their contract element by element.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "quant/fp16.h"
#include "quant/quant.h"
#include "support/backends.h"

namespace toy {
namespace {

class BackendOn : public ::testing::TestWithParam<const cpu::Backend*> {
 protected:
  const cpu::Backend& cpu() const { return *GetParam(); }
};

// The polynomial has < 2e-7 relative error before the final rounding, so the
// float result is within 2e-7 + one rounding (2^-24 ≈ 6e-8) of the exact value.
constexpr double kRelTol = 2e-7 + 6e-8;

TEST_P(BackendOn, ExpShiftedMatchesDoubleExpOverOddLengths) {
  std::mt19937 rng(7);
  // Exponents that stay normal in float: expf's whole normal range.
  std::uniform_real_distribution<float> dist(-87.0f, 88.0f);
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 31, 33, 100}) {
    std::vector<float> x(static_cast<size_t>(n)), y(x.size());  // (n)
    for (float& v : x) v = dist(rng);
    const float shift = 0.25f;
    cpu().exp_shifted(y.data(), x.data(), shift, n);
    for (int64_t i = 0; i < n; ++i) {
      const double want = std::exp(double(x[i] - shift));
      ASSERT_NEAR(y[i], want, kRelTol * want) << "n=" << n << " i=" << i << " x=" << x[i];
    }
  }
}

TEST_P(BackendOn, ExpShiftedInPlaceKeepsTheMaximumAtExactlyOne) {
  // Softmax calls exp_shifted(p, p, max, n): the maximum must map to exactly 1
  // and far-below-max scores to 0 or a denormal (the documented underflow).
  std::vector<float> p = {3.0f, -200.0f, 1.0f, 3.0f, -1000.0f};  // (5)
  cpu().exp_shifted(p.data(), p.data(), 3.0f, static_cast<int64_t>(p.size()));
  EXPECT_EQ(p[0], 1.0f);
  EXPECT_EQ(p[3], 1.0f);
  EXPECT_GE(p[1], 0.0f);
  EXPECT_LT(p[1], std::numeric_limits<float>::min());
  EXPECT_GE(p[4], 0.0f);
  EXPECT_LT(p[4], std::numeric_limits<float>::min());
  EXPECT_NEAR(p[2], std::exp(-2.0), kRelTol * std::exp(-2.0));
}

TEST_P(BackendOn, F16RowsWidenToTheScalarConversionsBits) {
  std::vector<uint16_t> h;
  for (uint32_t v = 0; v < 65536; v += 7) h.push_back(static_cast<uint16_t>(v));
  h.push_back(0x7C00);  // inf
  h.push_back(0x0001);  // smallest denormal
  std::vector<float> out(h.size());
  cpu().f16_to_f32_row(out.data(), h.data(), static_cast<int64_t>(h.size()));
  for (size_t i = 0; i < h.size(); ++i) {
    const float want = quant::f16_to_f32(h[i]);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(out[i])) << std::hex << h[i];
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(want)) << std::hex << h[i];
    }
  }
}

// The forward SwiGLU (the FFN activation of every llama-family forward), in place
// on the gate as the forward calls it, over vector bodies and tails.
TEST_P(BackendOn, SwigluMatchesTheDoubleFormula) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 4.0f);
  for (int64_t n : {1, 3, 4, 7, 8, 15, 16, 17, 100}) {
    std::vector<float> g(n), u(n);
    for (int64_t i = 0; i < n; ++i) g[i] = dist(rng), u[i] = dist(rng);
    g[0] = -90.0f;  // exp(90): the sigmoid underflows to 0, not NaN
    std::vector<float> h = g;
    cpu().swiglu(h.data(), h.data(), u.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double want = double(g[i]) / (1.0 + std::exp(-double(g[i]))) * u[i];
      EXPECT_NEAR(h[i], want, 1e-6 * (1.0 + std::fabs(want))) << "n=" << n << " i=" << i;
    }
  }
}

TEST_P(BackendOn, SwigluBackwardAccumulatesTheDerivatives) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (int64_t n : {1, 5, 8, 16, 23, 40}) {
    std::vector<float> g(n), u(n), dh(n), dg(n, 0.5f), du(n, -0.25f);
    for (int64_t i = 0; i < n; ++i) g[i] = dist(rng), u[i] = dist(rng), dh[i] = dist(rng);
    cpu().swiglu_backward(dg.data(), du.data(), dh.data(), g.data(), u.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double s = 1.0 / (1.0 + std::exp(-double(g[i])));
      const double want_du = -0.25 + double(dh[i]) * g[i] * s;
      const double want_dg = 0.5 + double(dh[i]) * u[i] * s * (1.0 + g[i] * (1.0 - s));
      EXPECT_NEAR(du[i], want_du, 1e-5 * (1.0 + std::fabs(want_du))) << "n=" << n << " i=" << i;
      EXPECT_NEAR(dg[i], want_dg, 1e-5 * (1.0 + std::fabs(want_dg))) << "n=" << n << " i=" << i;
    }
  }
}

// gemm_micro over every (m_valid, n_valid) edge, accumulating and overwriting;
// elements outside the valid tile are left alone.
TEST_P(BackendOn, GemmMicroKernelMatchesDoubleSumsOnEveryEdgeTile) {
  const int64_t MR = cpu::kGemmMR, NR = cpu::kGemmNR, kc = 37, ldc = NR + 3;
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> a(kc * MR), b(kc * NR);  // (kc, MR) and (kc, NR) panels, k-major
  for (float& v : a) v = dist(rng);
  for (float& v : b) v = dist(rng);
  for (int64_t m : {int64_t{1}, int64_t{3}, int64_t{5}, MR}) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{9}, int64_t{16}, int64_t{17}, NR}) {
      for (bool overwrite : {false, true}) {
        std::vector<float> c(MR * ldc, 2.0f);
        cpu().gemm_micro(kc, a.data(), b.data(), c.data(), ldc, m, n, overwrite);
        for (int64_t i = 0; i < MR; ++i) {
          for (int64_t j = 0; j < ldc; ++j) {
            const float got = c[i * ldc + j];
            if (i >= m || j >= n) {
              ASSERT_EQ(got, 2.0f) << "outside the tile: " << i << "," << j;
              continue;
            }
            double sum = overwrite ? 0.0 : 2.0;
            for (int64_t k = 0; k < kc; ++k) sum += double(a[k * MR + i]) * b[k * NR + j];
            ASSERT_NEAR(got, sum, 1e-5 * (1.0 + std::fabs(sum)))
                << m << "x" << n << " " << i << "," << j;
          }
        }
      }
    }
  }
}

// pack_rows / pack_rows_bf16 (where the backend has them) against their contract over
// both panel widths, every count of valid rows and k lengths around the vector widths.
TEST_P(BackendOn, DequantizedRowsHaveTheScalarBits) {
  if (!cpu().dequantize_row) GTEST_SKIP() << "quant::dequantize_row serves";
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (DType type : {DType::Q4_0, DType::Q4_1, DType::Q8_0, DType::Q6_K}) {
    const int64_t n = 256 * 3;
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = dist(rng);
    std::vector<uint8_t> row(static_cast<size_t>(row_bytes(type, n)));
    quant::quantize_row(type, x.data(), row.data(), n);
    std::vector<float> want(x.size()), got(x.size(), -1.0f);
    quant::dequantize_row(type, row.data(), want.data(), n);
    if (!cpu().dequantize_row(type, row.data(), got.data(), n)) continue;  // not handled
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << dtype_name(type) << " at " << i;
  }
}

TEST_P(BackendOn, TransposingPacksFollowTheirContract) {
  if (!cpu().pack_rows && !cpu().pack_rows_bf16) GTEST_SKIP() << "the portable packs serve";
  std::mt19937 rng(13);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t stride = 300;
  std::vector<float> src(cpu::kGemmNR * stride);  // (kGemmNR, stride) rows of k
  for (float& v : src) v = dist(rng);
  for (int64_t width : {cpu::kGemmMR, cpu::kGemmNR}) {
    for (int64_t valid = 1; valid <= width; ++valid) {
      for (int64_t kc : {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 255, 256}) {
        const auto element = [&](int64_t i, int64_t k) {
          return i < valid && k < kc ? src[i * stride + k] : 0.0f;
        };
        if (cpu().pack_rows) {
          std::vector<float> panel(kc * width, -1.0f);  // (kc, width)
          cpu().pack_rows(panel.data(), src.data(), stride, valid, width, kc);
          for (int64_t k = 0; k < kc; ++k)
            for (int64_t i = 0; i < width; ++i)
              ASSERT_EQ(panel[k * width + i], element(i, k))
                  << "width " << width << " valid " << valid << " kc " << kc;
        }
        if (cpu().pack_rows_bf16) {
          const int64_t kp = (kc + 1) / 2;
          std::vector<uint32_t> pairs(kp * width, 0xDEADBEEF);  // (kp, width)
          cpu().pack_rows_bf16(pairs.data(), src.data(), stride, valid, width, kc);
          for (int64_t p = 0; p < kp; ++p) {
            for (int64_t i = 0; i < width; ++i) {
              const uint32_t want = quant::f32_to_bf16(element(i, 2 * p)) |
                                    uint32_t(quant::f32_to_bf16(element(i, 2 * p + 1))) << 16;
              ASSERT_EQ(pairs[p * width + i], want)
                  << "width " << width << " valid " << valid << " kc " << kc;
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendOn,
                         ::testing::ValuesIn(testing_support::runnable_backends()),
                         testing_support::backend_name);

}  // namespace
}  // namespace toy
