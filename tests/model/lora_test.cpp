// LoRA adapters: loading llama.cpp's format (the fixture adapter and hand-made ones in
// F32 / F16), the errors a wrong adapter gets, and the term linear() and merging add.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "gguf/writer.h"
#include "kernels/cpu/features.h"
#include "model/linear.h"
#include "model/lora.h"
#include "model/model.h"
#include "quant/fp16.h"
#include "support/fixtures.h"

namespace toy {
namespace {

Model base() {
  return Model::load(testing::fixture_path("models/llama.gguf"));
}

struct FakeTensor {
  std::string name;
  std::vector<int64_t> ne;
  DType type = DType::F32;
};

// Writes an adapter GGUF with the given tensors (values i * 0.01) and metadata.
std::string write_adapter(const std::vector<FakeTensor>& tensors,
                          const std::string& type = "adapter", const std::string& arch = "llama") {
  static std::vector<std::vector<uint8_t>> keep;  // tensor bytes live until write()
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::string(arch));
  w.set("general.type", gguf::Value::string(type));
  w.set("adapter.type", gguf::Value::string("lora"));
  w.set("adapter.lora.alpha", gguf::Value::f32(8.0f));
  for (const FakeTensor& t : tensors) {
    const int64_t n = t.ne[0] * t.ne[1];
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * (t.type == DType::F32 ? 4 : 2));
    for (int64_t i = 0; i < n; ++i) {
      const float v = 0.01f * static_cast<float>(i % 97) - 0.3f;
      if (t.type == DType::F32)
        reinterpret_cast<float*>(bytes.data())[i] = v;
      else
        reinterpret_cast<uint16_t*>(bytes.data())[i] = quant::f32_to_f16(v);
    }
    keep.push_back(std::move(bytes));
    w.add_tensor(t.name, t.type, t.ne, keep.back().data());
  }
  const std::string path = testing::temp_path(".gguf");
  w.write(path);
  return path;
}

std::string load_error(const std::string& path, const Model& m) {
  try {
    LoraAdapter::load(path, m);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LoraAdapter, LoadsTheFixtureAdapter) {
  const Model m = base();
  const LoraAdapter a = LoraAdapter::load(testing::fixture_path("lora/llama-lora.gguf"), m);
  EXPECT_EQ(a.alpha, 8.0f);
  ASSERT_EQ(a.weights.size(), 8u);  // attn_q, attn_v, attn_output, ffn_up in 2 layers
  for (const LoraWeight& w : a.weights) {
    EXPECT_EQ(w.rank(), 4) << w.base_name;
    EXPECT_EQ(w.a.type, DType::F32);
    EXPECT_EQ(w.b.ne[0], 4);
  }
  EXPECT_FLOAT_EQ(a.effective_scale(0.5f, 4), 0.5f * 8.0f / 4.0f);
}

TEST(LoraAdapter, F16TensorsAreDequantized) {
  const Model m = base();
  const std::string f32 = write_adapter(
      {{"blk.0.attn_q.weight.lora_a", {64, 2}}, {"blk.0.attn_q.weight.lora_b", {2, 64}}});
  const std::string f16 = write_adapter({{"blk.0.attn_q.weight.lora_a", {64, 2}, DType::F16},
                                         {"blk.0.attn_q.weight.lora_b", {2, 64}, DType::F16}});
  const LoraAdapter a = LoraAdapter::load(f32, m), b = LoraAdapter::load(f16, m);
  ASSERT_EQ(b.weights.size(), 1u);
  EXPECT_EQ(b.weights[0].a.type, DType::F32);
  for (int64_t i = 0; i < 128; ++i)
    EXPECT_NEAR(b.weights[0].a.ptr<float>()[i], a.weights[0].a.ptr<float>()[i], 1e-3);
  std::filesystem::remove(f32);
  std::filesystem::remove(f16);
}

TEST(LoraAdapter, WrongAdaptersNameTheProblem) {
  const Model m = base();
  const std::string unknown = write_adapter(
      {{"blk.7.attn_q.weight.lora_a", {64, 2}}, {"blk.7.attn_q.weight.lora_b", {2, 64}}});
  EXPECT_NE(load_error(unknown, m).find("blk.7.attn_q.weight"), std::string::npos)
      << load_error(unknown, m);
  const std::string transposed = write_adapter(
      {{"blk.0.attn_k.weight.lora_a", {2, 64}}, {"blk.0.attn_k.weight.lora_b", {32, 2}}});
  EXPECT_NE(load_error(transposed, m).find("transposed"), std::string::npos)
      << load_error(transposed, m);
  const std::string half = write_adapter({{"blk.0.attn_q.weight.lora_a", {64, 2}}});
  EXPECT_NE(load_error(half, m).find("no matching .lora_b"), std::string::npos)
      << load_error(half, m);
  const std::string norm = write_adapter(
      {{"blk.0.attn_norm.weight.lora_a", {64, 2}}, {"blk.0.attn_norm.weight.lora_b", {2, 1}}});
  EXPECT_NE(load_error(norm, m).find("not supported"), std::string::npos) << load_error(norm, m);
  const std::string model_file = write_adapter(
      {{"blk.0.attn_q.weight.lora_a", {64, 2}}, {"blk.0.attn_q.weight.lora_b", {2, 64}}}, "model");
  EXPECT_NE(load_error(model_file, m).find("expected 'adapter'"), std::string::npos);
  const std::string other_arch = write_adapter(
      {{"blk.0.attn_q.weight.lora_a", {64, 2}}, {"blk.0.attn_q.weight.lora_b", {2, 64}}}, "adapter",
      "qwen2");
  EXPECT_NE(load_error(other_arch, m).find("'qwen2'"), std::string::npos);
  for (const auto& p : {unknown, transposed, half, norm, model_file, other_arch})
    std::filesystem::remove(p);
}

TEST(LoraLinear, AddsTheScaledLowRankTerm) {
  const Model m = base();
  auto adapter = std::make_shared<const LoraAdapter>(
      LoraAdapter::load(testing::fixture_path("lora/llama-lora.gguf"), m));
  LoraSet set;
  set.add(adapter, 0.5f, m);
  ThreadPool pool(2);
  const Compute compute{pool, cpu::host_backend()};
  const LinearContext plain{compute, MatmulMode::Exact};
  const LinearContext with{compute, MatmulMode::Exact, &set};

  const int64_t T = 3, E = 64;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(T * E));
  for (float& v : x) v = normal(rng);
  const LayerWeights& l = m.weights.layers[1];
  std::vector<float> y0(T * E), y1(T * E);
  linear(y0.data(), x.data(), l.attn_q, T, plain);
  linear(y1.data(), x.data(), l.attn_q, T, with);

  const LoraWeight* w = nullptr;
  for (const LoraWeight& c : adapter->weights)
    if (c.base_name == "blk.1.attn_q.weight") w = &c;
  ASSERT_NE(w, nullptr);
  const int64_t r = w->rank();
  const double scale = 0.5 * 8.0 / static_cast<double>(r);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> ax(static_cast<size_t>(r));
    for (int64_t k = 0; k < r; ++k)
      for (int64_t i = 0; i < E; ++i) ax[k] += double(w->a.ptr<float>()[k * E + i]) * x[t * E + i];
    for (int64_t o = 0; o < E; ++o) {
      double delta = 0;
      for (int64_t k = 0; k < r; ++k) delta += double(w->b.ptr<float>()[o * r + k]) * ax[k];
      EXPECT_NEAR(y1[t * E + o] - y0[t * E + o], scale * delta, 1e-4 + 1e-4 * std::abs(delta));
    }
  }
  // A weight the adapter does not name is untouched, bit for bit.
  std::vector<float> k0(T * 32), k1(T * 32);
  linear(k0.data(), x.data(), l.attn_k, T, plain);
  linear(k1.data(), x.data(), l.attn_k, T, with);
  EXPECT_EQ(k0, k1);

  // Merging adds the same term to W: (W + s·B·A) x = W x + s·B·(A x).
  std::vector<float> rows(static_cast<size_t>(E * E), 0.0f);
  const auto terms = set.find(l.attn_q.data);
  ASSERT_EQ(terms.size(), 1u);
  add_lora_rows(rows.data(), 0, E, E, terms);  // rows = s·B·A alone (W = 0)
  for (int64_t o = 0; o < E; ++o) {
    double delta = 0;
    for (int64_t i = 0; i < E; ++i) delta += double(rows[o * E + i]) * x[i];
    EXPECT_NEAR(y1[o] - y0[o], delta, 1e-4 + 1e-4 * std::abs(delta));
  }
}

}  // namespace
}  // namespace toy
