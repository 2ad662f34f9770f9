// Whole-model gradient checks: every parameter tensor of tiny llama (GQA,
// untied), qwen2 (q/k/v biases, tied), qwen3 (per-head q/k norm, head_dim
// != n_embd/n_head) and gemma2 (post norms, GeGLU, both softcaps, a sliding
// window narrower than T, scaled embeddings) models, sampled elements, against central differences
// of the double-precision model; and the float training path (the production kernels) against the
// double gradients.
#include <gtest/gtest.h>

#include "kernels/compute.h"
#include "kernels/cpu/features.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "grad_check.h"
#include "train/model.h"
#include "train/params.h"
#include "train/scratch_config.h"

namespace toy::train {
namespace {

enum class Rope { Plain, Factors, Yarn };

struct Case {
  const char* name;
  ScratchShape shape;
  bool tied;
  Rope rope = Rope::Plain;
  int64_t n_embd_lens = 0;  // a projection lens from a table of this width (donor rows trained too)
};

ScratchShape shape(const char* arch, int64_t n_head, int64_t n_head_kv, int64_t head_dim) {
  ScratchShape s;
  s.arch = arch;
  s.n_vocab = 13;
  s.n_embd = 12;
  s.n_layer = 2;
  s.n_head = n_head;
  s.n_head_kv = n_head_kv;
  s.head_dim = head_dim;
  s.n_ff = 9;
  s.n_ctx = 5;
  return s;
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

// Gemma 2 with the window (layer 0) narrower than T = 5 and softcaps small enough
// that tanh bends on these random weights (the defaults 50 and 30 would be linear).
ScratchShape gemma2_shape() {
  ScratchShape s = shape("gemma2", 4, 2, 4);
  s.sliding_window = 3;
  s.attn_softcap = 1.5f;
  s.final_softcap = 2.0f;
  return s;
}

const Case kCases[] = {
    {"llama", shape("llama", 4, 2, 4), false},
    {"qwen2", shape("qwen2", 3, 1, 0), true},
    {"qwen3", shape("qwen3", 2, 1, 6), false},
    // llama3 frequency factors (rope_freqs) and YaRN: RoPE exactly as inference builds it.
    {"llama3_rope_factors", shape("llama", 2, 2, 8), false, Rope::Factors},
    {"qwen2_yarn", shape("qwen2", 2, 1, 8), true, Rope::Yarn},
    {"gemma2", gemma2_shape(), true},
    // The projection lens (toy train --donor-embeddings), narrower and wider than n_embd.
    {"llama_lens", shape("llama", 4, 2, 4), false, Rope::Plain, 8},
    {"qwen3_lens", shape("qwen3", 2, 1, 6), false, Rope::Plain, 17},
};

template <typename Real>
std::unique_ptr<ParamStore<Real>> make_store(const Case& c) {
  ModelConfig config = scratch_config(c.shape);
  config.n_embd_lens = c.n_embd_lens;
  if (c.rope == Rope::Yarn) {
    config.rope.scaling = RopeScaling::Yarn;
    config.rope.freq_scale = 0.25f;
    config.rope.n_ctx_orig = 64;
  }
  auto store = std::make_unique<ParamStore<Real>>(config, [&](const TensorSpec& spec) {
    if (spec.name == "output.weight") return !c.tied;
    if (spec.name == "rope_freqs.weight") return c.rope == Rope::Factors;
    return spec.name.find(".bias") != std::string::npos && config.arch().qkv_bias;
  });
  init_random(*store, 7, 1.0);
  if (c.rope == Rope::Factors) {
    const Tensor& freqs = store->weights().rope_freqs;
    EXPECT_NE(freqs.data, nullptr);
    for (int64_t i = 0; i < freqs.ne[0]; ++i) freqs.ptr<float>()[i] = 1.0f + 3.0f * float(i);
  }
  // Move norms and biases away from 1 and 0 so their gradients are exercised
  // in general position.
  const std::vector<double> noise = testing::random_values(store->total(), 99, 0.1);
  for (int64_t i = 0; i < store->total(); ++i) store->params()[i] += Real(noise[i]);
  return store;
}

// tokens and targets (B=2, T=5) with two ignored positions.
const std::vector<int32_t> kTokens = {1, 5, 12, 0, 7, 3, 3, 9, 2, 11};
const std::vector<int32_t> kTargets = {5, 12, -1, 7, 4, 3, 9, 2, -1, 6};

class WholeModelGradient : public ::testing::TestWithParam<Case> {};

TEST_P(WholeModelGradient, EveryTensorMatchesFiniteDifferencesInDouble) {
  const Case& c = GetParam();
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  auto store = make_store<double>(c);
  TrainModel<double> model(*store, 2, 5);
  auto loss = [&] {
    const CrossEntropyResult r = model.forward(kTokens.data(), kTargets.data(), cx);
    return r.loss_sum / double(r.counted);
  };
  const CrossEntropyResult r = model.forward(kTokens.data(), kTargets.data(), cx);
  EXPECT_EQ(r.counted, 8);
  store->zero_grads();
  model.backward(1.0 / double(r.counted), cx);
  const std::vector<double> grads(store->grads(), store->grads() + store->total());
  int checked_tensors = 0;
  for (const ParamTensor& p : store->tensors()) {
    // Sample 6 elements spread over the tensor (all of a small one).
    const int64_t samples = std::min<int64_t>(6, p.numel);
    for (int64_t s = 0; s < samples; ++s) {
      const int64_t i = p.offset + (s * 7919 + 3) % p.numel;
      const double numeric = testing::central_difference(store->params()[i], loss, 1e-5);
      const double analytic = grads[i];
      const double err = std::abs(analytic - numeric);
      EXPECT_TRUE(err <= 1e-6 || err <= 1e-3 * std::abs(numeric))
          << c.name << " " << p.spec.name << "[" << i - p.offset << "]: analytic " << analytic
          << " numeric " << numeric;
    }
    ++checked_tensors;
  }
  EXPECT_EQ(checked_tensors, static_cast<int>(store->tensors().size()));
  if (c.tied) {
    EXPECT_EQ(store->find("output.weight"), nullptr);
  }
  if (c.n_embd_lens > 0) {
    EXPECT_NE(store->find("lens.proj.weight"), nullptr);
  }
  if (std::string(c.name) == "qwen2") {
    EXPECT_NE(store->find("blk.1.attn_v.bias"), nullptr);
  }
  if (std::string(c.name) == "qwen3") {
    EXPECT_NE(store->find("blk.0.attn_k_norm.weight"), nullptr);
  }
  if (std::string(c.name) == "gemma2") {
    EXPECT_NE(store->find("blk.1.post_attention_norm.weight"), nullptr);
    EXPECT_NE(store->find("blk.1.post_ffw_norm.weight"), nullptr);
    EXPECT_TRUE(store->config().layer_uses_window(0));
    EXPECT_FALSE(store->config().layer_uses_window(1));
  }
}

TEST_P(WholeModelGradient, FloatPathMatchesDoubleGradients) {
  const Case& c = GetParam();
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  auto dstore = make_store<double>(c);
  auto fstore = make_store<float>(c);
  for (int64_t i = 0; i < dstore->total(); ++i) dstore->params()[i] = double(fstore->params()[i]);
  TrainModel<double> dmodel(*dstore, 2, 5);
  TrainModel<float> fmodel(*fstore, 2, 5);
  const CrossEntropyResult dr = dmodel.forward(kTokens.data(), kTargets.data(), cx);
  const CrossEntropyResult fr = fmodel.forward(kTokens.data(), kTargets.data(), cx);
  EXPECT_NEAR(fr.loss_sum, dr.loss_sum, 1e-5 * dr.loss_sum);
  dstore->zero_grads();
  fstore->zero_grads();
  dmodel.backward(1.0 / 8.0, cx);
  fmodel.backward(1.0 / 8.0, cx);
  for (const ParamTensor& p : dstore->tensors()) {
    double diff = 0.0, norm = 0.0;
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
      const double d = dstore->grads()[i], f = double(fstore->grads()[i]);
      diff += (d - f) * (d - f);
      norm += d * d;
    }
    EXPECT_LE(std::sqrt(diff), 1e-4 * std::sqrt(norm) + 1e-9) << c.name << " " << p.spec.name;
  }
}

// Mixed precision against double: the loss within loss_tol and the gradients (norm of the
// difference) within grad_tol, relative. The float backward runs under `loss_scale`, as the
// trainer's loss scaling applies it, and its gradients are divided back.
void expect_16bit_gradients(const Case& c, MatmulMode mode, double loss_scale, double loss_tol,
                            double grad_tol) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  auto dstore = make_store<double>(c);
  auto fstore = make_store<float>(c);
  for (int64_t i = 0; i < dstore->total(); ++i) dstore->params()[i] = double(fstore->params()[i]);
  TrainModel<double> dmodel(*dstore, 2, 5);
  TrainModel<float> fmodel(*fstore, 2, 5);
  fmodel.set_matmul_mode(mode);
  const CrossEntropyResult dr = dmodel.forward(kTokens.data(), kTargets.data(), cx);
  const CrossEntropyResult fr = fmodel.forward(kTokens.data(), kTargets.data(), cx);
  EXPECT_NEAR(fr.loss_sum, dr.loss_sum, loss_tol * dr.loss_sum);
  EXPECT_NE(fr.loss_sum, float(dr.loss_sum));  // the rounding did happen
  dstore->zero_grads();
  fstore->zero_grads();
  dmodel.backward(1.0 / 8.0, cx);
  fmodel.backward(loss_scale / 8.0, cx);
  double diff = 0.0, norm = 0.0;
  for (int64_t i = 0; i < dstore->total(); ++i) {
    const double d = dstore->grads()[i], f = double(fstore->grads()[i]) / loss_scale;
    diff += (d - f) * (d - f);
    norm += d * d;
  }
  EXPECT_LE(std::sqrt(diff), grad_tol * std::sqrt(norm)) << c.name;
}

// --compute-type bf16: the weight products' inputs rounded to BF16 (F32 sums, F32 master
// weights): gradients within BF16's rounding (8 mantissa bits) of the double ones.
TEST_P(WholeModelGradient, Bf16ComputeStaysWithinBf16RoundingOfDouble) {
  expect_16bit_gradients(GetParam(), MatmulMode::TrainBf16, 1.0, 2e-2, 3e-2);
}

// --compute-type f16: the same with F16 inputs (11-bit mantissa against BF16's 8), so a
// tighter bound. Without a loss scale the small gradients fall into F16's subnormals and
// lose their precision (the reason loss scaling exists); these tiny models' largest ones
// would overflow the trainer's starting 65536, after which it would back off to about 1024.
TEST_P(WholeModelGradient, F16ComputeStaysWithinF16RoundingOfDouble) {
  expect_16bit_gradients(GetParam(), MatmulMode::TrainF16, 1024.0, 2.5e-3, 1e-2);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, WholeModelGradient, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TrainDeterminism, SameSeedAndThreadsGiveIdenticalWeightsAndLosses) {
  auto run = [](int threads) {
    ThreadPool pool(threads);
    const Compute cx{pool, cpu::host_backend()};
    auto store = make_store<float>(kCases[0]);
    TrainModel<float> model(*store, 2, 5);
    AdamWConfig adamw;
    adamw.weight_decay = 0.1;
    std::vector<double> losses;
    for (int step = 1; step <= 3; ++step) {
      store->zero_grads();
      const CrossEntropyResult r = model.forward(kTokens.data(), kTargets.data(), cx);
      losses.push_back(r.loss_sum);
      model.backward(1.0 / double(r.counted), cx);
      adamw_step(*store, adamw, 1e-2, step);
    }
    std::vector<float> weights(store->params(), store->params() + store->total());
    return std::make_pair(losses, weights);
  };
  const auto a = run(2), b = run(2), c = run(1);
  EXPECT_EQ(a.first, b.first);
  EXPECT_EQ(a.second, b.second);
  EXPECT_EQ(a.first, c.first);  // the kernels sum in a fixed order for any thread count
  EXPECT_GT(a.first[0], a.first[2]);
}

}  // namespace
}  // namespace toy::train
