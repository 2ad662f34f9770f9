// Training is a mode of the one forward: for every model training supports,
// the training forward's logits (B sequences in one batch, activations saved)
// equal the inference forward's (each sequence alone through a KV cache). This
// pins the two modes together — RoPE with llama3 frequency factors and YaRN,
// the config's attention scale, biases, q/k norm, tied output, and Gemma 2's
// post norms, GeGLU, softcaps, sliding window and embedding scale.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
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

constexpr int64_t kSeqs = 2;

// Trains nothing: runs the training forward of `store` over kSeqs sequences of
// `tokens` shifted by one id each, and compares each sequence's logits with the
// inference forward of `model` (the same weights) on it alone.
void expect_modes_agree(const Model& model, ParamStore<float>& store,
                        const std::vector<int32_t>& tokens, const std::string& what) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const ModelConfig& c = model.config;
  const int64_t T = static_cast<int64_t>(tokens.size()), V = c.n_vocab;
  std::vector<int32_t> batch, targets(static_cast<size_t>(kSeqs * T), -1);
  for (int64_t s = 0; s < kSeqs; ++s)
    for (int32_t t : tokens) batch.push_back(static_cast<int32_t>((t + s) % V));
  TrainModel<float> train(store, kSeqs, T);
  train.forward(batch.data(), targets.data(), cx);
  for (int64_t s = 0; s < kSeqs; ++s) {
    const std::vector<int32_t> seq(batch.begin() + s * T, batch.begin() + (s + 1) * T);
    const std::vector<float> ref = testing::inference_logits(model, seq, nullptr, cx);
    const float* ours = train.logits() + s * T * V;
    double worst = 0.0, scale = 0.0;
    for (int64_t i = 0; i < T * V; ++i) {
      worst = std::max(worst, std::abs(double(ours[i]) - ref[i]));
      scale = std::max(scale, std::abs(double(ref[i])));
    }
    EXPECT_LE(worst, 1e-4 * (1.0 + scale))
        << what << " sequence " << s << ": max |diff| " << worst << ", max |logit| " << scale;
  }
}

std::vector<int32_t> some_tokens(int64_t n, int64_t n_vocab) {
  std::vector<int32_t> t;
  for (int64_t i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((i * 7 + 3) % n_vocab));
  return t;
}

class TrainingForward : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainingForward, LogitsEqualTheInferenceForward) {
  const std::string name = GetParam();
  const Model m = Model::load(testing::fixture_path(name + ".gguf"));
  ParamStore<float> store(
      m.config, [&](const TensorSpec& spec) { return m.file->find_tensor(spec.name) != nullptr; });
  load_params(store, m.config, m.weights);
  if (name.find("llama3-rope") != std::string::npos) {
    ASSERT_NE(store.weights().rope_freqs.data, nullptr);
    EXPECT_EQ(store.find("rope_freqs.weight"), nullptr) << "a constant, not a parameter";
  }
  expect_modes_agree(
      m, store, some_tokens(std::min<int64_t>(m.config.n_ctx_train, 11), m.config.n_vocab), name);
}

INSTANTIATE_TEST_SUITE_P(TrainableFixtures, TrainingForward,
                         ::testing::Values("models/llama", "models/llama-tied", "models/llama-f16",
                                           "models/llama-q8_0", "models/llama-linear",
                                           "models/llama3-rope", "models/qwen2",
                                           "models/qwen2-yarn", "models/qwen3", "models/gemma2",
                                           "models/stories260K", "train/tiny-llama",
                                           "train/tiny-qwen2", "train/tiny-qwen3"),
                         [](const auto& info) {
                           std::string n = info.param.substr(info.param.find('/') + 1);
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// An attention scale other than 1/sqrt(head_dim) (as Gemma 2 27B has) reaches
// the training forward from the config.
TEST(TrainingForward, UsesTheConfigsAttentionScale) {
  ScratchShape shape;
  shape.n_vocab = 17;
  shape.n_embd = 16;
  shape.n_layer = 2;
  shape.n_head = 4;
  shape.n_head_kv = 2;
  shape.n_ff = 24;
  shape.n_ctx = 8;
  ModelConfig config = scratch_config(shape);
  config.attn_scale = 1.7f;
  ParamStore<float> store(config, [](const TensorSpec&) { return false; });
  init_random(store, 3, 1.0);
  Model model;
  model.config = config;
  model.weights = store.weights();
  expect_modes_agree(model, store, some_tokens(8, shape.n_vocab), "attn_scale 1.7");
}

// A from-scratch Gemma 2 whose window (3) is narrower than T (9) and whose softcaps
// bend (the fixture's 50 and 30 barely do on its small logits).
TEST(TrainingForward, Gemma2WithNarrowWindowAndTightSoftcaps) {
  ScratchShape shape;
  shape.arch = "gemma2";
  shape.n_vocab = 23;
  shape.n_embd = 16;
  shape.n_layer = 3;
  shape.n_head = 4;
  shape.n_head_kv = 2;
  shape.n_ff = 24;
  shape.n_ctx = 9;
  shape.sliding_window = 3;
  shape.attn_softcap = 1.0f;
  shape.final_softcap = 2.0f;
  const ModelConfig config = scratch_config(shape);
  ParamStore<float> store(config, [](const TensorSpec&) { return false; });
  init_random(store, 5, 1.0);
  Model model;
  model.config = config;
  model.weights = store.weights();
  expect_modes_agree(model, store, some_tokens(9, shape.n_vocab), "gemma2 window 3");
}

// Mixture-of-experts fixtures train with their experts and router frozen: the
// training forward is the inference forward there too.
TEST(TrainingForward, MixtureOfExpertsFixtures) {
  for (const char* name : {"mixtral", "qwen3moe", "olmoe"}) {
    const Model m = Model::load(testing::fixture_path(std::string("models/") + name + ".gguf"));
    check_trainable(m.config);
    LoraConfig lora;  // B = 0: the adapters add nothing
    lora.targets = {"attn_q", "attn_output"};
    auto store = make_lora_store<float>(m.config, m.weights, lora);
    expect_modes_agree(m, *store,
                       some_tokens(std::min<int64_t>(m.config.n_ctx_train, 11), m.config.n_vocab),
                       name);
  }
}

}  // namespace
}  // namespace toy::train
