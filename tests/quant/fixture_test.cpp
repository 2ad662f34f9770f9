// The quant layer against llama.cpp on the model fixtures:
//  - dequantizing every tensor of the quantized / 16-bit fixtures gives exactly the
//    F32 bytes llama.cpp produces (SHA-256 per tensor, *.dequant-sha256.json);
//  - quantizing the F32 base (llama-q.gguf) gives at most 1.10x llama.cpp's relative
//    RMS error per type, and for the reference-algorithm types the same bytes as the
//    files llama.cpp quantized from that base.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "gguf/reader.h"
#include "quant/quant.h"
#include "support/fixtures.h"

namespace toy::quant {
namespace {

std::vector<float> dequantize_tensor(const Tensor& t) {
  const int64_t row = t.ne[0];
  std::vector<float> out(static_cast<size_t>(t.numel()));
  for (int64_t r = 0; r < t.rows(); ++r)
    dequantize_row(t.type, t.row(r), out.data() + r * row, row);
  return out;
}

std::vector<uint8_t> quantize_tensor(DType type, const Tensor& f32) {
  const int64_t row = f32.ne[0];
  const auto bytes_per_row = static_cast<size_t>(row_bytes(type, row));
  std::vector<uint8_t> out(bytes_per_row * static_cast<size_t>(f32.rows()));
  for (int64_t r = 0; r < f32.rows(); ++r)
    quantize_row(type, reinterpret_cast<const float*>(f32.row(r)),
                 out.data() + static_cast<size_t>(r) * bytes_per_row, row);
  return out;
}

class DequantizeFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(DequantizeFixture, EveryTensorMatchesLlamaCppBitForBit) {
  const std::string name = GetParam();
  const auto file = gguf::File::open(testing::fixture_path("models/" + name + ".gguf"));
  const auto expected = nlohmann::json::parse(
      testing::read_text(testing::fixture_path("models/" + name + ".dequant-sha256.json")));
  ASSERT_EQ(expected.size(), file->tensors().size());
  for (const gguf::TensorInfo& info : file->tensors()) {
    const std::string tensor_name(info.name);
    ASSERT_TRUE(expected.contains(tensor_name)) << tensor_name;
    ASSERT_TRUE(can_dequantize(info.type)) << tensor_name;
    const auto values = dequantize_tensor(file->tensor(info));
    EXPECT_EQ(testing::sha256_hex(values.data(), values.size() * sizeof(float)),
              expected[tensor_name].get<std::string>())
        << tensor_name << " (" << dtype_name(info.type) << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, DequantizeFixture,
                         ::testing::Values("llama-f16", "llama-bf16", "llama-q8_0", "llama-q4_0",
                                           "llama-q6_k", "llama-q4_k_m"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

bool is_weight_matrix(const gguf::TensorInfo& info) {
  return info.n_dims >= 2;
}

// ||dequant(quant(W)) - W|| / ||W|| over all 2-D tensors of llama-q.gguf together.
double relative_rms_error(const gguf::File& base, DType type) {
  double err = 0, ref = 0;
  for (const gguf::TensorInfo& info : base.tensors()) {
    if (!is_weight_matrix(info)) continue;
    const Tensor w = base.tensor(info);
    const auto q = quantize_tensor(type, w);
    const int64_t row = w.ne[0];
    const auto bytes_per_row = static_cast<size_t>(row_bytes(type, row));
    std::vector<float> y(static_cast<size_t>(row));
    for (int64_t r = 0; r < w.rows(); ++r) {
      dequantize_row(type, q.data() + static_cast<size_t>(r) * bytes_per_row, y.data(), row);
      const auto* x = reinterpret_cast<const float*>(w.row(r));
      for (int64_t i = 0; i < row; ++i) {
        const double d = static_cast<double>(y[static_cast<size_t>(i)]) - x[i];
        err += d * d;
        ref += static_cast<double>(x[i]) * x[i];
      }
    }
  }
  return std::sqrt(err / ref);
}

class QuantizationError : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    base_ = gguf::File::open(testing::fixture_path("models/llama-q.gguf"));
  }
  static void TearDownTestSuite() { base_.reset(); }
  static double measure(DType type) {
    const double e = relative_rms_error(*base_, type);
    std::printf("  relative RMS error %-5s %.5f\n", std::string(dtype_name(type)).c_str(), e);
    return e;
  }
  static std::shared_ptr<gguf::File> base_;
};
std::shared_ptr<gguf::File> QuantizationError::base_;

TEST_F(QuantizationError, WithinTenPercentOfLlamaCpp) {
  // llama.cpp's values on this file (llama-quantize, no imatrix).
  const std::map<DType, double> llama_cpp = {
      {DType::Q8_0, 0.00534}, {DType::Q6_K, 0.0177},  {DType::Q4_K, 0.0712},
      {DType::Q4_0, 0.0856},  {DType::BF16, 0.00166},
  };
  for (const auto& [type, reference] : llama_cpp) {
    const double ours = measure(type);
    EXPECT_LE(ours, 1.10 * reference) << dtype_name(type) << " llama.cpp " << reference;
    EXPECT_GT(ours, 0.0);
  }
}

TEST_F(QuantizationError, Q5_KBeatsQ4_K) {
  const double q4_k = measure(DType::Q4_K);
  const double q5_k = measure(DType::Q5_K);
  EXPECT_LT(q5_k, q4_k);
  // One more bit per weight roughly halves the error.
  EXPECT_LT(q5_k, 0.6 * q4_k);
}

TEST_F(QuantizationError, OtherTypesAreOrderedByBits) {
  const double q2_k = measure(DType::Q2_K), q3_k = measure(DType::Q3_K);
  const double q4_1 = measure(DType::Q4_1), q5_0 = measure(DType::Q5_0);
  const double q5_1 = measure(DType::Q5_1), f16 = measure(DType::F16);
  const double q4_k = measure(DType::Q4_K), q4_0 = measure(DType::Q4_0);
  EXPECT_LT(q3_k, q2_k);
  EXPECT_LT(q4_k, q3_k);
  EXPECT_LT(q4_1, q4_0);
  EXPECT_LT(q5_0, q4_1);
  EXPECT_LT(q5_1, q5_0);
  EXPECT_LT(f16, 0.001);
}

// llama.cpp quantized llama-q.gguf into these files. For types whose reference
// quantizer is a closed formula we produce the same bytes; for the searched K-quants
// the same algorithm differs only where float rounding breaks a near-tie.
TEST_F(QuantizationError, SameBytesAsLlamaCppQuantizedFiles) {
  // Largest fraction of differing bytes per tensor type.
  const std::map<DType, double> max_differing_fraction = {{DType::BF16, 0.0},
                                                          {DType::Q8_0, 0.0},
                                                          {DType::Q4_0, 0.0},
                                                          {DType::Q6_K, 0.005},
                                                          {DType::Q4_K, 0.01}};
  for (const char* name :
       {"llama-bf16", "llama-q8_0", "llama-q4_0", "llama-q6_k", "llama-q4_k_m"}) {
    const std::string file_name = name;
    const auto quantized = gguf::File::open(testing::fixture_path("models/" + file_name + ".gguf"));
    for (const gguf::TensorInfo& info : quantized->tensors()) {
      if (info.type == DType::F32) continue;
      const Tensor reference = quantized->tensor(info);
      const auto ours = quantize_tensor(info.type, base_->tensor(info.name));
      ASSERT_EQ(ours.size(), reference.bytes()) << file_name << " " << info.name;
      size_t differing = 0;
      const auto* ref_bytes = static_cast<const uint8_t*>(reference.data);
      for (size_t i = 0; i < ours.size(); ++i) differing += ours[i] != ref_bytes[i];
      ASSERT_TRUE(max_differing_fraction.contains(info.type)) << dtype_name(info.type);
      EXPECT_LE(static_cast<double>(differing),
                max_differing_fraction.at(info.type) * static_cast<double>(ours.size()))
          << file_name << " " << info.name << " (" << dtype_name(info.type) << "): " << differing
          << " of " << ours.size() << " bytes differ";
    }
  }
}

}  // namespace
}  // namespace toy::quant
