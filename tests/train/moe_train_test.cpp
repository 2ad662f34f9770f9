// Mixture-of-experts models train with their experts and router frozen, or trained (issue 9):
//  - whole-model gradient checks in double of tiny Mixtral-style llama (renormalised
//    top-k), qwen3moe (renormalised, per-head q/k norm), olmoe (not renormalised,
//    full-width q/k norm) and qwen2moe (shared expert with a sigmoid gate, biases):
//    every trainable tensor and LoRA adapters on attention against central differences,
//    the gradient flowing through the frozen experts, routing and router; and every
//    tensor with experts, router and shared expert trained too;
//  - the float path against those double gradients;
//  - on the llama.cpp fixtures (mixtral, qwen3moe, olmoe): step 0 of LoRA training is
//    the inference forward, a few AdamW steps lower the loss, --full leaves experts and
//    router out, and with train_experts trains them too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "grad_check.h"
#include "inference_logits.h"
#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "model/forward.h"
#include "model/model.h"
#include "support/fixtures.h"
#include "train/finetune.h"
#include "train/model.h"
#include "train/params.h"
#include "train/scratch_config.h"

namespace toy::train {
namespace {

struct MoeCase {
  const char* name;
  ScratchShape shape;
};

void PrintTo(const MoeCase& c, std::ostream* os) {
  *os << c.name;
}

ScratchShape moe_shape(const char* arch, int64_t n_head, int64_t n_head_kv, int64_t head_dim) {
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
  s.n_expert = 5;
  s.n_expert_used = 2;
  s.n_ff_exp = 7;
  s.n_ff_shexp = 11;
  return s;
}

const MoeCase kMoeCases[] = {
    {"mixtral", moe_shape("llama", 4, 2, 4)},
    {"qwen3moe", moe_shape("qwen3moe", 2, 1, 6)},
    {"olmoe", moe_shape("olmoe", 3, 3, 4)},
    {"qwen2moe", moe_shape("qwen2moe", 3, 1, 0)},
};

// tokens and targets (B=2, T=5) with two ignored positions.
const std::vector<int32_t> kTokens = {1, 5, 12, 0, 7, 3, 3, 9, 2, 11};
const std::vector<int32_t> kTargets = {5, 12, -1, 7, 4, 3, 9, 2, -1, 6};

// Every tensor of the model (experts and router too), random in general position.
template <typename Real>
std::unique_ptr<ParamStore<Real>> random_base(const ModelConfig& config) {
  auto base = std::make_unique<ParamStore<Real>>(config, [](const TensorSpec&) { return false; });
  init_random(*base, 7, 1.0);
  const std::vector<double> noise = testing::random_values(base->total(), 99, 0.1);
  for (int64_t i = 0; i < base->total(); ++i) base->params()[i] += Real(noise[i]);
  return base;
}

// Every tensor but the experts and router, trained over `base` (which keeps those).
template <typename Real>
std::unique_ptr<ParamStore<Real>> frozen_expert_store(const ModelConfig& config,
                                                      const Weights& base) {
  std::vector<TensorSpec> specs;
  for_each_tensor(config, base, [&](const TensorSpec& spec, const Tensor&) {
    if (!is_expert_or_router(spec.name)) specs.push_back(spec);
  });
  auto store = std::make_unique<ParamStore<Real>>(config, specs, &base);
  // The base's values bit for bit (load_params goes through F32 rows).
  for_each_tensor(config, base, [&](const TensorSpec& spec, const Tensor& t) {
    if (const ParamTensor* p = store->find(spec.name))
      std::memcpy(store->params() + p->offset, t.data, sizeof(Real) * size_t(p->numel));
  });
  return store;
}

// Central differences of the mean loss at 5 sampled elements of every store tensor.
void expect_gradients_match(ParamStore<double>& store, TrainModel<double>& model, const Compute& cx,
                            const std::string& what) {
  auto loss = [&] {
    const CrossEntropyResult r = model.forward(kTokens.data(), kTargets.data(), cx);
    return r.loss_sum / double(r.counted);
  };
  const CrossEntropyResult r = model.forward(kTokens.data(), kTargets.data(), cx);
  ASSERT_EQ(r.counted, 8);
  store.zero_grads();
  model.backward(1.0 / double(r.counted), cx);
  const std::vector<double> grads(store.grads(), store.grads() + store.total());
  for (const ParamTensor& p : store.tensors()) {
    for (int64_t s = 0; s < std::min<int64_t>(5, p.numel); ++s) {
      const int64_t i = p.offset + (s * 7919 + 3) % p.numel;
      const double numeric = testing::central_difference(store.params()[i], loss, 1e-5);
      const double err = std::abs(grads[i] - numeric);
      EXPECT_TRUE(err <= 1e-7 || err <= 1e-4 * std::abs(numeric))
          << what << " " << p.spec.name << "[" << i - p.offset << "]: analytic " << grads[i]
          << " numeric " << numeric;
    }
  }
}

class MoeGradient : public ::testing::TestWithParam<MoeCase> {};

TEST_P(MoeGradient, FrozenExpertsPassTheGradientInDouble) {
  const MoeCase& c = GetParam();
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const ModelConfig config = scratch_config(c.shape);
  ASSERT_TRUE(config.is_moe());
  auto base = random_base<double>(config);
  auto store = frozen_expert_store<double>(config, base->weights());
  EXPECT_EQ(store->find("blk.0.ffn_gate_inp.weight"), nullptr);
  EXPECT_NE(store->find("blk.0.ffn_norm.weight"), nullptr);
  TrainModel<double> model(*store, 2, 5);
  expect_gradients_match(*store, model, cx, c.name);
}

TEST_P(MoeGradient, AttentionLoraMatchesFiniteDifferencesInDouble) {
  const MoeCase& c = GetParam();
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const ModelConfig config = scratch_config(c.shape);
  auto base = random_base<double>(config);
  LoraConfig lora;
  lora.rank = 2;
  lora.alpha = 3.0;
  lora.targets = parse_lora_targets("q,k,v,o");
  auto store = make_lora_store<double>(config, base->weights(), lora);
  // B away from zero, so A's gradients are exercised too.
  const std::vector<double> noise = testing::random_values(store->total(), 5, 0.3);
  for (int64_t i = 0; i < store->total(); ++i) store->params()[i] += noise[i];
  TrainModel<double> model(*store, 2, 5);
  expect_gradients_match(*store, model, cx, std::string(c.name) + " lora");
}

// Frozen experts (a store over the base), and every tensor trained (the base itself).
TEST_P(MoeGradient, FloatPathMatchesDoubleGradients) {
  const MoeCase& c = GetParam();
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const ModelConfig config = scratch_config(c.shape);
  auto fbase = random_base<float>(config);
  auto dbase = random_base<double>(config);
  for (int64_t i = 0; i < dbase->total(); ++i) dbase->params()[i] = double(fbase->params()[i]);
  auto ffrozen = frozen_expert_store<float>(config, fbase->weights());
  auto dfrozen = frozen_expert_store<double>(config, dbase->weights());
  for (const bool frozen : {true, false}) {
    ParamStore<float>& fstore = frozen ? *ffrozen : *fbase;
    ParamStore<double>& dstore = frozen ? *dfrozen : *dbase;
    TrainModel<float> fmodel(fstore, 2, 5);
    TrainModel<double> dmodel(dstore, 2, 5);
    const CrossEntropyResult fr = fmodel.forward(kTokens.data(), kTargets.data(), cx);
    const CrossEntropyResult dr = dmodel.forward(kTokens.data(), kTargets.data(), cx);
    EXPECT_NEAR(fr.loss_sum, dr.loss_sum, 1e-5 * dr.loss_sum);
    fstore.zero_grads();
    dstore.zero_grads();
    fmodel.backward(1.0 / 8.0, cx);
    dmodel.backward(1.0 / 8.0, cx);
    for (const ParamTensor& p : dstore.tensors()) {
      double diff = 0.0, norm = 0.0;
      for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
        const double d = dstore.grads()[i], f = double(fstore.grads()[i]);
        diff += (d - f) * (d - f);
        norm += d * d;
      }
      EXPECT_GT(norm, 0.0) << c.name << " " << p.spec.name;
      EXPECT_LE(std::sqrt(diff), 1e-4 * std::sqrt(norm) + 1e-9)
          << c.name << (frozen ? " frozen " : " trained ") << p.spec.name;
    }
  }
}

// Experts, router and shared expert trained too (a store holding every tensor).
TEST_P(MoeGradient, TrainedExpertsAndRouterInDouble) {
  const MoeCase& c = GetParam();
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const ModelConfig config = scratch_config(c.shape);
  auto store = random_base<double>(config);
  ASSERT_NE(store->find("blk.1.ffn_gate_inp.weight"), nullptr);
  ASSERT_NE(store->find("blk.1.ffn_down_exps.weight"), nullptr);
  TrainModel<double> model(*store, 2, 5);
  expect_gradients_match(*store, model, cx, std::string(c.name) + " all");
}

// `toy train --arch qwen3moe` (no experts in the shape): refused with the reason.
TEST(MoeScratch, FromScratchIsRefused) {
  ScratchShape s = moe_shape("qwen3moe", 2, 1, 6);
  s.n_expert = 0;
  try {
    scratch_config(s);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be trained from scratch"), std::string::npos)
        << e.what();
  }
  s = moe_shape("qwen3", 2, 1, 6);
  EXPECT_THROW(scratch_config(s), Error) << "qwen3 has no experts";
}

INSTANTIATE_TEST_SUITE_P(TinyMoe, MoeGradient, ::testing::ValuesIn(kMoeCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- The llama.cpp fixtures ----------------------------------------------------------

constexpr int64_t kSeqs = 2, kPos = 9;

void make_batch(int64_t n_vocab, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
  tokens.clear();
  targets.clear();
  for (int64_t s = 0; s < kSeqs; ++s)
    for (int64_t p = 0; p < kPos; ++p) tokens.push_back(int32_t((s * 31 + p * 7 + 3) % n_vocab));
  for (int64_t r = 0; r < kSeqs * kPos; ++r)
    targets.push_back(r % kPos == kPos - 1 ? -1 : tokens[static_cast<size_t>(r + 1)]);
}

// max over sequences of max |training − inference logit| / (1 + max |logit|).
double worst_mismatch(const Model& model, const float* train_logits,
                      const std::vector<int32_t>& tokens, const LoraSet* lora, const Compute& cx) {
  const int64_t V = model.config.n_vocab;
  double worst = 0.0;
  for (int64_t s = 0; s < kSeqs; ++s) {
    const std::vector<int32_t> seq(tokens.begin() + s * kPos, tokens.begin() + (s + 1) * kPos);
    const std::vector<float> ref = testing::inference_logits(model, seq, lora, cx);
    double diff = 0.0, scale = 0.0;
    for (int64_t i = 0; i < kPos * V; ++i) {
      diff = std::max(diff, std::abs(double(train_logits[s * kPos * V + i]) - ref[i]));
      scale = std::max(scale, std::abs(double(ref[i])));
    }
    worst = std::max(worst, diff / (1.0 + scale));
  }
  return worst;
}

std::vector<double> train_steps(ParamStore<float>& store, TrainModel<float>& model,
                                const std::vector<int32_t>& tokens,
                                const std::vector<int32_t>& targets, int steps, double lr,
                                const Compute& cx) {
  AdamWConfig adamw;
  std::vector<double> losses;
  for (int step = 1; step <= steps; ++step) {
    store.zero_grads();
    const CrossEntropyResult r = model.forward(tokens.data(), targets.data(), cx);
    losses.push_back(r.loss_sum / double(r.counted));
    model.backward(1.0 / double(r.counted), cx);
    for (int64_t i = 0; i < store.total(); ++i)
      EXPECT_TRUE(std::isfinite(store.grads()[i])) << "step " << step << " grad " << i;
    adamw_step(store, adamw, lr, step);
  }
  return losses;
}

class MoeFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(MoeFixture, AttentionLoraStartsAtInferenceAndLearns) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const Model model = Model::load(testing::fixture_path("models/" + GetParam() + ".gguf"));
  ASSERT_TRUE(model.config.is_moe());
  check_trainable(model.config);
  LoraConfig lora;
  lora.rank = 4;
  lora.targets = parse_lora_targets("q,k,v,o");
  EXPECT_THROW(
      make_lora_store<float>(model.config, model.weights, {4, 16.0, {"attn_q", "ffn_up"}, 1}),
      Error)
      << "a MoE model has no dense FFN to adapt";
  auto store = make_lora_store<float>(model.config, model.weights, lora);
  TrainModel<float> train(*store, kSeqs, kPos);
  std::vector<int32_t> tokens, targets;
  make_batch(model.config.n_vocab, tokens, targets);

  // Step 0: B = 0, so the training forward is the base model's inference forward.
  train.forward(tokens.data(), targets.data(), cx);
  EXPECT_LE(worst_mismatch(model, train.logits(), tokens, nullptr, cx), 1e-4);

  // Every B — layer 0's too, whose gradient crosses every later layer's experts and
  // router — gets a gradient, and a few steps lower the loss.
  store->zero_grads();
  const CrossEntropyResult r = train.forward(tokens.data(), targets.data(), cx);
  train.backward(1.0 / double(r.counted), cx);
  for (const ParamTensor& p : store->tensors()) {
    if (!p.spec.name.ends_with(".lora_b")) continue;
    double norm = 0.0;
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) norm += std::abs(store->grads()[i]);
    EXPECT_GT(norm, 0.0) << p.spec.name;
  }
  const std::vector<double> losses = train_steps(*store, train, tokens, targets, 6, 1e-2, cx);
  EXPECT_LT(losses.back(), losses.front());

  // The trained adapters in the inference forward give the training forward's logits.
  train.forward(tokens.data(), targets.data(), cx);
  const auto set = store->lora_over(store->grads());
  EXPECT_LE(worst_mismatch(model, train.logits(), tokens, set.get(), cx), 1e-4);
}

TEST_P(MoeFixture, FullStoreLeavesExpertsAndRouterFrozen) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const Model model = Model::load(testing::fixture_path("models/" + GetParam() + ".gguf"));
  auto store = make_full_store(model, /*train_embeddings=*/false);
  for (const ParamTensor& p : store->tensors()) {
    EXPECT_FALSE(is_expert_or_router(p.spec.name)) << p.spec.name;
    EXPECT_EQ(p.spec.name.find("_exps"), std::string::npos) << p.spec.name;
    EXPECT_EQ(p.spec.name.find("ffn_gate_inp"), std::string::npos) << p.spec.name;
  }
  EXPECT_NE(store->find("blk.0.attn_q.weight"), nullptr);
  EXPECT_NE(store->find("blk.0.ffn_norm.weight"), nullptr);
  EXPECT_EQ(store->find("blk.0.ffn_up_exps.weight"), nullptr);
  // The frozen experts are read from the base as stored.
  EXPECT_EQ(store->weights().layers[0].ffn_up_exps.data, model.weights.layers[0].ffn_up_exps.data);

  TrainModel<float> train(*store, kSeqs, kPos);
  std::vector<int32_t> tokens, targets;
  make_batch(model.config.n_vocab, tokens, targets);
  train.forward(tokens.data(), targets.data(), cx);
  EXPECT_LE(worst_mismatch(model, train.logits(), tokens, nullptr, cx), 1e-4);
  const std::vector<double> losses = train_steps(*store, train, tokens, targets, 4, 1e-3, cx);
  EXPECT_LT(losses.back(), losses.front());
}

// --full --train-experts: the experts and router are F32 master copies and learn too.
TEST_P(MoeFixture, FullStoreWithExpertsTrainsThem) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const Model model = Model::load(testing::fixture_path("models/" + GetParam() + ".gguf"));
  auto store = make_full_store(model, /*train_embeddings=*/false, /*train_experts=*/true);
  ASSERT_NE(store->find("blk.0.ffn_gate_inp.weight"), nullptr);
  ASSERT_NE(store->find("blk.0.ffn_down_exps.weight"), nullptr);
  TrainModel<float> train(*store, kSeqs, kPos);
  std::vector<int32_t> tokens, targets;
  make_batch(model.config.n_vocab, tokens, targets);
  train.forward(tokens.data(), targets.data(), cx);
  EXPECT_LE(worst_mismatch(model, train.logits(), tokens, nullptr, cx), 1e-4);
  store->zero_grads();
  const CrossEntropyResult r = train.forward(tokens.data(), targets.data(), cx);
  train.backward(1.0 / double(r.counted), cx);
  for (const ParamTensor& p : store->tensors()) {
    double norm = 0.0;
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) norm += std::abs(store->grads()[i]);
    EXPECT_GT(norm, 0.0) << p.spec.name;
  }
  const std::vector<double> losses = train_steps(*store, train, tokens, targets, 4, 1e-3, cx);
  EXPECT_LT(losses.back(), losses.front());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MoeFixture, ::testing::Values("mixtral", "qwen3moe", "olmoe"));

}  // namespace
}  // namespace toy::train
