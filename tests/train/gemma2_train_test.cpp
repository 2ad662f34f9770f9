// Gemma 2 through the training machinery end to end (issue 9): LoRA and full
// fine-tuning over the llama.cpp fixture (post norms, GeGLU, softcaps 50/30,
// window 8 < T), where step 0 of the training forward is the inference forward
// and a few steps lower the loss; LoRA gradients through the frozen Gemma ops
// against finite differences; and a from-scratch Gemma 2 written as GGUF that
// reads back with the same softcaps, window and logits. The per-op and
// whole-model gradient checks are in kernels_backward_test / model_grad_test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "grad_check.h"
#include "inference_logits.h"
#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "model/forward.h"
#include "model/model.h"
#include "support/fixtures.h"
#include "train/export.h"
#include "train/finetune.h"
#include "train/model.h"
#include "train/params.h"
#include "train/scratch_config.h"

namespace toy::train {
namespace {

constexpr int64_t kSeqs = 2, kPos = 12;  // T = 12 > the fixture's window of 8

// (kSeqs, kPos) tokens and next-token targets (the last position ignored).
void make_batch(int64_t n_vocab, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
  tokens.clear();
  targets.clear();
  for (int64_t s = 0; s < kSeqs; ++s)
    for (int64_t p = 0; p < kPos; ++p) tokens.push_back(int32_t((s * 31 + p * 7 + 3) % n_vocab));
  for (int64_t r = 0; r < kSeqs * kPos; ++r)
    targets.push_back(r % kPos == kPos - 1 ? -1 : tokens[static_cast<size_t>(r + 1)]);
}

// max |training logits − inference logits| over the batch, relative to 1 + max |logit|.
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

// Runs `steps` AdamW steps on one batch; returns the mean losses before each.
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

TEST(Gemma2Training, LoraOnTheFixtureStartsAtInferenceAndLearns) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const Model model = Model::load(testing::fixture_path("models/gemma2.gguf"));
  ASSERT_GT(kPos, model.config.sliding_window);
  check_trainable(model.config);
  LoraConfig lora;
  lora.rank = 4;
  lora.targets = parse_lora_targets("all-linear");
  auto store = make_lora_store<float>(model.config, model.weights, lora);
  TrainModel<float> train(*store, kSeqs, kPos);
  std::vector<int32_t> tokens, targets;
  make_batch(model.config.n_vocab, tokens, targets);

  // Step 0: B = 0, so the training forward is the base model's inference forward.
  train.forward(tokens.data(), targets.data(), cx);
  EXPECT_LE(worst_mismatch(model, train.logits(), tokens, nullptr, cx), 1e-4);

  // Every B gets a gradient at step 0 (A's is zero while B is), and training learns.
  store->zero_grads();
  const CrossEntropyResult r = train.forward(tokens.data(), targets.data(), cx);
  train.backward(1.0 / double(r.counted), cx);
  for (const ParamTensor& p : store->tensors()) {
    if (!p.spec.name.ends_with(".lora_b")) continue;
    double norm = 0.0;
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) norm += std::abs(store->grads()[i]);
    EXPECT_GT(norm, 0.0) << p.spec.name;
  }
  const std::vector<double> losses = train_steps(*store, train, tokens, targets, 8, 1e-2, cx);
  EXPECT_LT(losses.back(), losses.front());

  // The trained adapters in the inference forward give the training forward's logits.
  train.forward(tokens.data(), targets.data(), cx);
  const auto set = store->lora_over(store->grads());
  EXPECT_LE(worst_mismatch(model, train.logits(), tokens, set.get(), cx), 1e-4);
}

TEST(Gemma2Training, FullFinetuneOnTheFixtureLearnsEveryTensor) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const Model model = Model::load(testing::fixture_path("models/gemma2.gguf"));
  auto store = make_full_store(model, /*train_embeddings=*/true);
  ASSERT_NE(store->find("blk.0.post_attention_norm.weight"), nullptr);
  ASSERT_NE(store->find("blk.2.post_ffw_norm.weight"), nullptr);
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
  const std::vector<double> losses = train_steps(*store, train, tokens, targets, 5, 1e-3, cx);
  EXPECT_LT(losses.back(), losses.front());
}

ScratchShape tiny_gemma2() {
  ScratchShape s;
  s.arch = "gemma2";
  s.n_vocab = 13;
  s.n_embd = 12;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 4;
  s.n_ff = 9;
  s.n_ctx = 5;
  s.sliding_window = 2;
  s.attn_softcap = 1.5f;
  s.final_softcap = 2.0f;
  return s;
}

// LoRA adapters on every projection, the Gemma ops (post norms, GeGLU, softcaps,
// window) frozen between them: the gradient flows through ops that own no parameter.
TEST(Gemma2Training, LoraAdaptersMatchFiniteDifferencesInDouble) {
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const ModelConfig config = scratch_config(tiny_gemma2());
  ParamStore<double> base(config, [](const TensorSpec&) { return false; });
  init_random(base, 7, 1.0);
  const std::vector<double> base_noise = testing::random_values(base.total(), 4, 0.1);
  for (int64_t i = 0; i < base.total(); ++i) base.params()[i] += base_noise[i];
  LoraConfig lora;
  lora.rank = 2;
  lora.alpha = 3.0;
  lora.targets = parse_lora_targets("all-linear");
  auto store = make_lora_store<double>(config, base.weights(), lora);
  const std::vector<double> noise = testing::random_values(store->total(), 5, 0.3);
  for (int64_t i = 0; i < store->total(); ++i) store->params()[i] += noise[i];

  const std::vector<int32_t> tokens = {1, 5, 12, 0, 7, 3, 3, 9, 2, 11};
  const std::vector<int32_t> targets = {5, 12, -1, 7, 4, 3, 9, 2, -1, 6};
  TrainModel<double> model(*store, 2, 5);
  auto loss = [&] {
    const CrossEntropyResult r = model.forward(tokens.data(), targets.data(), cx);
    return r.loss_sum / double(r.counted);
  };
  const CrossEntropyResult r = model.forward(tokens.data(), targets.data(), cx);
  store->zero_grads();
  model.backward(1.0 / double(r.counted), cx);
  const std::vector<double> grads(store->grads(), store->grads() + store->total());
  for (const ParamTensor& p : store->tensors()) {
    for (int64_t s = 0; s < 4; ++s) {
      const int64_t i = p.offset + (s * 7919 + 3) % p.numel;
      const double numeric = testing::central_difference(store->params()[i], loss, 1e-5);
      const double err = std::abs(grads[i] - numeric);
      EXPECT_TRUE(err <= 1e-7 || err <= 1e-4 * std::abs(numeric))
          << p.spec.name << "[" << i - p.offset << "]: analytic " << grads[i] << " numeric "
          << numeric;
    }
  }
}

// `toy train --arch gemma2`'s model written as GGUF reads back with the same
// softcaps and window (written even at their defaults) and the same logits.
TEST(Gemma2Training, ScratchModelWritesItsSoftcapsAndWindow) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  ScratchShape shape = tiny_gemma2();
  shape.n_ctx = kPos;
  shape.sliding_window = 5;
  const ModelConfig config = scratch_config(shape);
  ParamStore<float> store(config, [](const TensorSpec&) { return false; });
  init_random(store, 3, 1.0);
  const std::string path = testing::temp_path("gemma2-scratch.gguf");
  write_model_gguf(path, store, "tiny gemma2", DType::F32, [](gguf::Writer& w) {
    w.set("tokenizer.ggml.model", gguf::Value::string("none"));
  });
  const Model written = Model::load(path);
  EXPECT_EQ(written.config.attn_softcap, 1.5f);
  EXPECT_EQ(written.config.final_softcap, 2.0f);
  EXPECT_EQ(written.config.sliding_window, 5);
  EXPECT_EQ(written.config.attn_scale, config.attn_scale);

  TrainModel<float> train(store, kSeqs, kPos);
  std::vector<int32_t> tokens, targets;
  make_batch(config.n_vocab, tokens, targets);
  train.forward(tokens.data(), targets.data(), cx);
  EXPECT_LE(worst_mismatch(written, train.logits(), tokens, nullptr, cx), 1e-4);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace toy::train
