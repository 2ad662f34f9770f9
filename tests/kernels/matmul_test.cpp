// matmul: the SIMD / threaded kernels of every runnable CPU backend against the
// scalar references, for every weight type, odd sizes (n_in a multiple of the block
// size but not of the 64-element chunk, odd T and n_out), both modes and 1..3
// threads; the backends' packers against the portable ones, bit for bit.
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quant/dot_pack.h"
#include "quant/dot_ref.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "support/backends.h"

namespace toy {
namespace {

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<float> random_floats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = dist(rng);
  return v;
}

// A weight (n_out rows of n_in) of `type`, quantized from Gaussian values.
struct Weight {
  std::vector<uint8_t> bytes;
  Tensor tensor;
};

Weight make_weight(DType type, int64_t n_in, int64_t n_out, uint32_t seed) {
  Weight w;
  const std::vector<float> values = random_floats(n_in * n_out, seed, 0.5f);
  const int64_t row = row_bytes(type, n_in);
  w.bytes.resize(static_cast<size_t>(row * n_out));
  for (int64_t o = 0; o < n_out; ++o)
    quant::quantize_row(type, values.data() + o * n_in, w.bytes.data() + o * row, n_in);
  w.tensor = Tensor::view(type, w.bytes.data(), {n_in, n_out});
  return w;
}

// |y - ref| <= tol * sum_i |w_i||x_i| bound per output, using dequantized weights.
void expect_close(const std::vector<float>& y, const std::vector<float>& ref, const Tensor& w,
                  const std::vector<float>& x, int64_t T, double tol, const std::string& what) {
  const int64_t n_in = w.ne[0], n_out = w.rows();
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t o = 0; o < n_out; ++o) {
    quant::dequantize_row(w.type, w.row(o), row.data(), n_in);
    for (int64_t t = 0; t < T; ++t) {
      double scale = 1e-6;
      for (int64_t i = 0; i < n_in; ++i) scale += std::fabs(row[i] * x[t * n_in + i]);
      const size_t at = static_cast<size_t>(t * n_out + o);
      ASSERT_NEAR(y[at], ref[at], tol * scale) << what << " t=" << t << " o=" << o;
    }
  }
}

std::vector<int64_t> input_sizes(DType type) {
  const int64_t block = dtype_info(type).block_size;
  if (block == 256) return {256, 768};
  if (block == 32) return {32, 96, 160};
  return {16, 37, 100};  // plain types: masked tails too
}

class MatmulOn : public ::testing::TestWithParam<const cpu::Backend*> {
 protected:
  const cpu::Backend& cpu() const { return *GetParam(); }
};

TEST_P(MatmulOn, MatchesReferencesForEveryTypeModeAndThreadCount) {
  uint32_t seed = 1;
  for (DType type : kAllTypes) {
    for (int64_t n_in : input_sizes(type)) {
      const int64_t n_out = 13 + n_in % 7;
      const Weight w = make_weight(type, n_in, n_out, seed++);
      for (int64_t T : {1, 3, 7}) {
        const std::vector<float> x = random_floats(T * n_in, seed++);
        std::vector<float> exact(static_cast<size_t>(T * n_out));
        std::vector<float> fast(static_cast<size_t>(T * n_out));
        matmul_reference(exact.data(), x.data(), w.tensor, T);
        matmul_fast_reference(fast.data(), x.data(), w.tensor, T);
        for (int threads = 1; threads <= 3; ++threads) {
          ThreadPool pool(threads);
          const Compute cx{pool, cpu()};
          const std::string what = std::string(dtype_name(type)) + " n_in=" + std::to_string(n_in) +
                                   " T=" + std::to_string(T) +
                                   " threads=" + std::to_string(threads);
          std::vector<float> y(static_cast<size_t>(T * n_out), NAN);
          matmul(y.data(), x.data(), w.tensor, T, cx, MatmulMode::Exact);
          expect_close(y, exact, w.tensor, x, T, 2e-6, "exact " + what);
          std::fill(y.begin(), y.end(), NAN);
          matmul(y.data(), x.data(), w.tensor, T, cx, MatmulMode::Fast);
          expect_close(y, fast, w.tensor, x, T, 2e-6, "fast " + what);
          std::fill(y.begin(), y.end(), NAN);
          matmul(y.data(), x.data(), w.tensor, T, cx, MatmulMode::Train);
          expect_close(y, exact, w.tensor, x, T, 2e-6, "train " + what);
        }
      }
    }
  }
}

// Enough activation rows and weight rows to cross every register tile and cache
// block boundary, and to make the T split kick in for a short weight.
TEST_P(MatmulOn, LargeBatchesCrossTileAndBlockBoundaries) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu()};
  const struct {
    DType type;
    int64_t n_in, n_out, T;
  } cases[] = {{DType::F32, 320, 101, 70},
               {DType::F16, 96, 53, 33},
               {DType::BF16, 64, 7, 41},
               // past the backend's packed_f32_min_rows (the packed GEMM) where it has one
               {DType::F32, 100, 45, std::max<int64_t>(301, cpu().packed_f32_min_rows + 13)},
               {DType::Q8_0, 320, 101, 70},
               {DType::Q4_K, 512, 37, 45},
               {DType::Q6_K, 256, 9, 64},
               {DType::Q4_0, 64, 5, 40}};
  uint32_t seed = 100;
  for (const auto& c : cases) {
    const Weight w = make_weight(c.type, c.n_in, c.n_out, seed++);
    const std::vector<float> x = random_floats(c.T * c.n_in, seed++);
    for (MatmulMode mode : {MatmulMode::Exact, MatmulMode::Fast, MatmulMode::Train}) {
      std::vector<float> ref(static_cast<size_t>(c.T * c.n_out)), y(ref.size(), NAN);
      if (mode != MatmulMode::Fast) {
        matmul_reference(ref.data(), x.data(), w.tensor, c.T);
      } else {
        matmul_fast_reference(ref.data(), x.data(), w.tensor, c.T);
      }
      matmul(y.data(), x.data(), w.tensor, c.T, cx, mode);
      expect_close(y, ref, w.tensor, x, c.T, 2e-6, std::string(dtype_name(c.type)));
    }
  }
}

// Every integer weight type at batch sizes that leave partial 16-row tiles (the AMX path
// where the table has it) and a row count that leaves a partial panel, 1 and 2 threads.
TEST_P(MatmulOn, IntegerProductsOfPrefillSizedBatches) {
  uint32_t seed = 500;
  for (DType type : kAllTypes) {
    if (!quant::int_dot_supported(type)) continue;
    const int64_t n_in = dtype_info(type).block_size == 256 ? 512 : 160;
    const Weight w = make_weight(type, n_in, 29, seed++);
    for (int64_t T : {5, 16, 37}) {
      const std::vector<float> x = random_floats(T * n_in, seed++);
      std::vector<float> ref(static_cast<size_t>(T * 29));
      matmul_fast_reference(ref.data(), x.data(), w.tensor, T);
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        const Compute cx{pool, cpu()};
        std::vector<float> y(ref.size(), NAN);
        matmul(y.data(), x.data(), w.tensor, T, cx, MatmulMode::Fast);
        expect_close(y, ref, w.tensor, x, T, 2e-6,
                     std::string(dtype_name(type)) + " T=" + std::to_string(T));
      }
    }
  }
}

// A server decodes a sequence's row beside whatever rows other requests bring: the row's
// output must not depend on how many rows share the call (or greedy text would change with
// the load). The decoder asks for that (batch_invariant_rows); decode-sized batches and
// beyond, inference mode, every type, bit for bit.
TEST_P(MatmulOn, EachRowIsTheSameWhateverTheBatchSize) {
  ThreadPool pool(2);
  Compute cx{pool, cpu()};
  cx.batch_invariant_rows = true;
  uint32_t seed = 300;
  for (DType type : kAllTypes) {
    for (int64_t n_in : input_sizes(type)) {
      const int64_t n_out = 29;
      const Weight w = make_weight(type, n_in, n_out, seed++);
      constexpr int64_t kMaxRows = 20;
      const std::vector<float> x = random_floats(kMaxRows * n_in, seed++);
      std::vector<float> alone(static_cast<size_t>(kMaxRows * n_out));
      for (int64_t t = 0; t < kMaxRows; ++t)
        matmul(alone.data() + t * n_out, x.data() + t * n_in, w.tensor, 1, cx, MatmulMode::Fast);
      for (int64_t T = 2; T <= kMaxRows; ++T) {
        std::vector<float> y(static_cast<size_t>(T * n_out), NAN);
        matmul(y.data(), x.data(), w.tensor, T, cx, MatmulMode::Fast);
        for (int64_t i = 0; i < T * n_out; ++i)
          ASSERT_EQ(std::bit_cast<uint32_t>(y[static_cast<size_t>(i)]),
                    std::bit_cast<uint32_t>(alone[static_cast<size_t>(i)]))
              << dtype_name(type) << " n_in=" << n_in << " T=" << T << " row " << i / n_out
              << " out " << i % n_out << ": " << y[static_cast<size_t>(i)] << " vs "
              << alone[static_cast<size_t>(i)];
      }
    }
  }
}

// The packed weight row reproduces ggml's dequantization element by element.
TEST(DotPack, PackedWeightsDecodeToTheDequantizedValues) {
  for (DType type : kAllTypes) {
    if (!quant::int_dot_supported(type)) continue;
    const quant::IntDotTraits traits = quant::int_dot_traits(type);
    const int64_t n = dtype_info(type).block_size == 256 ? 512 : 96;
    const Weight w = make_weight(type, n, 1, 7);
    std::vector<uint8_t> memory(quant::packed_weight_row_bytes(n) + 64);
    uint8_t* aligned = memory.data() + (64 - reinterpret_cast<uintptr_t>(memory.data()) % 64);
    const quant::PackedWeightRow packed = quant::packed_weight_row_at(aligned, n);
    quant::pack_weight_row(type, w.tensor.row(0), n, packed);
    std::vector<float> expected(static_cast<size_t>(n));
    quant::dequantize_row(type, w.tensor.row(0), expected.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      float v = packed.scale[i / 4] * static_cast<float>(packed.u[i] - traits.zero_point);
      if (traits.has_mins) v += packed.min[i / 16];
      ASSERT_NEAR(v, expected[i], 1e-6f * (1.0f + std::fabs(expected[i])))
          << dtype_name(type) << " element " << i;
    }
  }
}

// The SIMD activation quantizer gives the scalar reference's codes and scales.
TEST_P(MatmulOn, ActivationCodesMatchTheReferenceQuantizer) {
  for (DType type : {DType::Q8_0, DType::Q4_1, DType::Q4_K}) {
    const int64_t n = 512;
    std::vector<float> x = random_floats(n, 11, 3.0f);
    x[5] = 0.0f;
    std::vector<uint8_t> memory(quant::packed_act_row_bytes(n) + 64);
    uint8_t* aligned = memory.data() + (64 - reinterpret_cast<uintptr_t>(memory.data()) % 64);
    const quant::PackedActRow packed = quant::packed_act_row_at(aligned, n);
    cpu().pack_activation_row(type, x.data(), n, packed);
    std::vector<uint8_t> ref(static_cast<size_t>(quant::act_row_bytes_ref(type, n)));
    quant::quantize_act_row_ref(type, x.data(), ref.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      int8_t code;
      if (type == DType::Q4_K) {
        code = reinterpret_cast<const quant::BlockQ8_K*>(ref.data())[i / 256].qs[i % 256];
      } else if (type == DType::Q4_1) {
        code = reinterpret_cast<const quant::BlockQ8_1*>(ref.data())[i / 32].qs[i % 32];
      } else {
        code = reinterpret_cast<const quant::BlockQ8_0*>(ref.data())[i / 32].qs[i % 32];
      }
      ASSERT_EQ(packed.q[i], code) << dtype_name(type) << " element " << i;
    }
  }
}

// The SIMD F16 / BF16 activation rounding gives ggml's bits (quant/fp16.h), ties and
// special values included, over a length with a scalar tail.
TEST_P(MatmulOn, ActivationRoundingTo16BitMatchesScalarConversions) {
  std::vector<float> x = random_floats(1000 + 7, 5, 10.0f);
  const float specials[] = {0.0f,
                            -0.0f,
                            1.0f + 1.0f / 2048,  // F16 tie
                            1.0f + 1.0f / 256,   // BF16 tie
                            65504.0f,
                            70000.0f,
                            1e-6f,
                            -3e-8f,
                            INFINITY,
                            -INFINITY,
                            NAN};
  for (size_t i = 0; i < std::size(specials); ++i) x[i * 37] = specials[i];
  for (FloatWeight type : {FloatWeight::F16, FloatWeight::BF16}) {
    std::vector<float> rounded(x.size());
    cpu().round_to_16bit(rounded.data(), x.data(), static_cast<int64_t>(x.size()), type);
    for (size_t i = 0; i < x.size(); ++i) {
      const float expected = type == FloatWeight::F16
                                 ? quant::f16_to_f32(quant::f32_to_f16(x[i]))
                                 : quant::bf16_to_f32(quant::f32_to_bf16(x[i]));
      EXPECT_EQ(std::bit_cast<uint32_t>(rounded[i]), std::bit_cast<uint32_t>(expected))
          << "element " << i << " = " << x[i];
    }
  }
}

TEST_P(MatmulOn, ZeroActivationsGiveZeros) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu()};
  const Weight w = make_weight(DType::Q4_K, 256, 5, 3);
  std::vector<float> x(256 * 2, 0.0f), y(10, NAN);
  matmul(y.data(), x.data(), w.tensor, 2, cx, MatmulMode::Fast);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

// Every backend's weight packer writes the portable packer's bytes (codes, lane
// scales, group mins and padding), for every integer type and rows with padding.
TEST_P(MatmulOn, PackedWeightRowsAreThoseOfThePortablePacker) {
  for (DType type : kAllTypes) {
    if (!quant::int_dot_supported(type)) continue;
    const int64_t block = dtype_info(type).block_size;
    for (int64_t n : {block, 3 * block, 5 * block}) {
      const Weight w = make_weight(type, n, 1, static_cast<uint32_t>(n));
      const size_t bytes = quant::packed_weight_row_bytes(n);
      std::vector<uint8_t> a(bytes + 64, 0xAB), b(bytes + 64, 0xCD);
      uint8_t* pa = a.data() + (64 - reinterpret_cast<uintptr_t>(a.data()) % 64);
      uint8_t* pb = b.data() + (64 - reinterpret_cast<uintptr_t>(b.data()) % 64);
      const quant::PackedWeightRow ra = quant::packed_weight_row_at(pa, n);
      const quant::PackedWeightRow rb = quant::packed_weight_row_at(pb, n);
      quant::pack_weight_row(type, w.tensor.row(0), n, ra);
      cpu().pack_weight_row(type, w.tensor.row(0), n, rb);
      const int64_t np = quant::packed_length(n);
      ASSERT_EQ(std::memcmp(ra.u, rb.u, np), 0) << dtype_name(type) << " n=" << n;
      ASSERT_EQ(std::memcmp(ra.scale, rb.scale, np), 0) << dtype_name(type) << " n=" << n;
      if (quant::int_dot_traits(type).has_mins) {
        ASSERT_EQ(std::memcmp(ra.min, rb.min, np / 4), 0) << dtype_name(type) << " n=" << n;
      }
    }
  }
}

// Every backend's activation packer writes the portable packer's bytes, including
// all-zero blocks, ties of the largest magnitude and padding.
TEST_P(MatmulOn, PackedActivationRowsAreThoseOfThePortablePacker) {
  for (DType type :
       {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_1, DType::Q4_K, DType::Q6_K}) {
    const int64_t n = dtype_info(type).block_size == 256 ? 768 : 224;
    std::vector<float> x = random_floats(n, 17, 2.0f);
    std::fill(x.begin(), x.begin() + 32, 0.0f);  // a zero block
    x[300 % n] = 9.0f;                           // a tie of the largest magnitude
    x[301 % n] = -9.0f;
    const size_t bytes = quant::packed_act_row_bytes(n);
    std::vector<uint8_t> a(bytes + 64, 0), b(bytes + 64, 0x55);
    uint8_t* pa = a.data() + (64 - reinterpret_cast<uintptr_t>(a.data()) % 64);
    uint8_t* pb = b.data() + (64 - reinterpret_cast<uintptr_t>(b.data()) % 64);
    const quant::PackedActRow ra = quant::packed_act_row_at(pa, n);
    const quant::PackedActRow rb = quant::packed_act_row_at(pb, n);
    quant::pack_activation_row(type, x.data(), n, ra);
    cpu().pack_activation_row(type, x.data(), n, rb);
    const int64_t np = quant::packed_length(n);
    ASSERT_EQ(std::memcmp(ra.q, rb.q, np), 0) << dtype_name(type);
    ASSERT_EQ(std::memcmp(ra.scale, rb.scale, np), 0) << dtype_name(type);
    ASSERT_EQ(std::memcmp(ra.start, rb.start, np), 0) << dtype_name(type);
    if (quant::int_dot_traits(type).act != quant::ActQuant::Q8_0) {  // sums: Q8_1 / Q8_K only
      ASSERT_EQ(std::memcmp(ra.sum, rb.sum, np / 4), 0) << dtype_name(type);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, MatmulOn,
                         ::testing::ValuesIn(testing_support::runnable_backends()),
                         testing_support::backend_name);

}  // namespace
}  // namespace toy
