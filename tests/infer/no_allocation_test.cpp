// The decode loop allocates nothing: every buffer is sized when the session is
// built. Counted by replacing the global operator new for this test binary
// (operator delete is replaced to match; counting is all it adds).
#include <gtest/gtest.h>

#include "kernels/compute.h"
#include "kernels/cpu/features.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "hybrid_model.h"
#include "infer/session.h"
#include "kernels/matmul.h"
#include "model/lora.h"
#include "model/model.h"
#include "support/fixtures.h"

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace toy {
namespace {

// Weight products of one decode step (one linear() call each).
int64_t weight_products_per_token(const ModelConfig& c) {
  int64_t ffn = 3;
  if (c.is_moe()) ffn = 1 + 3 * c.n_expert_used + (c.arch().shared_expert ? 4 : 0);
  int64_t products = 1;
  // Attention: q, k, v, output; a gated delta-net layer: qkv, gate, beta, alpha, ssm_out.
  for (int64_t il = 0; il < c.n_layer; ++il) products += (c.is_gdn(il) ? 5 : 4) + ffn;
  return products;
}

// toy::matmul belongs to the matmul layer, whose thread-pool dispatch may allocate
// (a std::function per call); what it allocates per call is measured and allowed,
// so the check is that everything else in the decode loop allocates nothing.
long allocations_per_matmul(const Model& model, MatmulMode mode, const Compute& pool) {
  const Tensor& w = model.weights.layers[0].attn_q;
  std::vector<float> x(static_cast<size_t>(w.ne[0]), 0.5f), y(static_cast<size_t>(w.ne[1]));
  matmul(y.data(), x.data(), w, 1, pool, mode);
  const long before = g_allocations.load();
  matmul(y.data(), x.data(), w, 1, pool, mode);
  return g_allocations.load() - before;
}

// `adapter` (a fixture path, optional) runs the model with that LoRA adapter: each adapted
// weight adds two products (A·x, then B·(A·x)).
void expect_no_allocation(const char* fixture, DType kv_type, MatmulMode mode, int threads,
                          const char* adapter = nullptr) {
  // "hybrid": attention and gated delta-net layers (its recurrent state in the cache).
  const Model model = Model::load(std::string(fixture) == "hybrid"
                                      ? testing::write_hybrid("attn,gdn", 4)
                                      : testing::fixture_path(std::string("models/") + fixture));
  ThreadPool pool(threads);
  const Compute cx{pool, cpu::host_backend()};
  LoraSet lora;
  int64_t lora_products = 0;
  if (adapter) {
    auto loaded = std::make_shared<const LoraAdapter>(
        LoraAdapter::load(testing::fixture_path(adapter), model));
    lora_products = 2 * static_cast<int64_t>(loaded->weights.size());
    lora.add(loaded, 1.0f, model);
  }
  Session session(model, pool,
                  {.kv_type = kv_type, .mode = mode, .lora = adapter ? &lora : nullptr});
  const int32_t prompt[] = {1, 2, 3, 4};
  session.prefill(prompt);
  session.decode(5);  // first use of every code path
  const long per_matmul = allocations_per_matmul(model, mode, cx);
  const int steps = 24;
  const long before = g_allocations.load();
  for (int32_t t = 0; t < steps; ++t) session.decode(6 + t);
  const long allocations = g_allocations.load() - before;
  EXPECT_EQ(allocations,
            steps * (weight_products_per_token(model.config) + lora_products) * per_matmul)
      << fixture << ": " << allocations << " allocations in " << steps << " decode steps, "
      << per_matmul << " per matmul call";
}

TEST(Decode, AllocatesNothingOutsideMatmul) {
  expect_no_allocation("llama.gguf", DType::F16, MatmulMode::Exact, 1);
  expect_no_allocation("gemma2.gguf", DType::F32, MatmulMode::Exact, 2);
  expect_no_allocation("qwen3moe.gguf", DType::Q8_0, MatmulMode::Exact, 1);
  expect_no_allocation("llama-q4_k_m.gguf", DType::F16, MatmulMode::Fast, 1);
  expect_no_allocation("llama.gguf", DType::F16, MatmulMode::Fast, 2, "lora/llama-lora.gguf");
  expect_no_allocation("hybrid", DType::F16, MatmulMode::Fast, 2);
}

}  // namespace
}  // namespace toy
