// Hybrid models in training: every parameter tensor of tiny hybrids (a gated
// delta-net layer beside an attention layer; also with fewer key than value heads)
// against central differences of the double-precision model; the float path
// against the double gradients; the
// training forward's logits against the inference forward (KV cache + recurrent
// state); and a few AdamW steps lowering the loss.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "grad_check.h"
#include "inference_logits.h"
#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "model/model.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/params.h"
#include "train/scratch_config.h"

namespace toy::train {
namespace {

struct HybridCase {
  const char* name;
  const char* pattern;
  int64_t n_k_head;  // 0: the default (one per KV head: fewer key than value heads)
};

const HybridCase kHybrids[] = {
    {"gdn_attn", "gdn,attn", 2},
    {"attn_gdn_gqa", "attn,gdn", 0},
};

template <typename Real>
std::unique_ptr<ParamStore<Real>> make_store(const HybridCase& h) {
  ScratchShape s;
  s.n_vocab = 13;
  s.n_embd = 12;
  s.n_layer = 2;
  s.n_head = 2;
  s.n_head_kv = 1;
  s.head_dim = 6;
  s.n_ff = 9;
  s.n_ctx = 16;
  s.layer_pattern = h.pattern;
  ModelConfig config = scratch_config(s);
  if (h.n_k_head > 0) config.gdn.n_k_head = h.n_k_head;
  auto store = std::make_unique<ParamStore<Real>>(config, [](const TensorSpec&) { return false; });
  init_random(*store, 11, 1.0);
  // Norms, biases and decays away from their initial values: general position.
  const std::vector<double> noise = testing::random_values(store->total(), 5, 0.1);
  for (int64_t i = 0; i < store->total(); ++i) store->params()[i] += Real(noise[i]);
  return store;
}

std::vector<int32_t> ids(int64_t n, int64_t salt, bool with_ignored) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int32_t>((i * 5 + salt * 3 + 1) % 13);
  if (with_ignored) v[2] = -1;
  return v;
}

class HybridGradient : public ::testing::TestWithParam<HybridCase> {};

TEST_P(HybridGradient, EveryTensorMatchesFiniteDifferencesInDouble) {
  const HybridCase& h = GetParam();
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  auto store = make_store<double>(h);
  const int64_t B = 2, T = 5;
  const auto tokens = ids(B * T, 0, false), targets = ids(B * T, 1, true);
  TrainModel<double> model(*store, B, T);
  auto loss = [&] {
    const CrossEntropyResult r = model.forward(tokens.data(), targets.data(), cx);
    return r.loss_sum / double(r.counted);
  };
  const CrossEntropyResult r = model.forward(tokens.data(), targets.data(), cx);
  store->zero_grads();
  model.backward(1.0 / double(r.counted), cx);
  const std::vector<double> grads(store->grads(), store->grads() + store->total());
  int gdn_tensors = 0;
  for (const ParamTensor& p : store->tensors()) {
    gdn_tensors += p.spec.name.find("ssm_") != std::string::npos ||
                   p.spec.name.find("attn_qkv") != std::string::npos ||
                   p.spec.name.find("attn_gate") != std::string::npos;
    const int64_t samples = std::min<int64_t>(8, p.numel);
    for (int64_t s = 0; s < samples; ++s) {
      const int64_t i = p.offset + (s * 7919 + 3) % p.numel;
      const double numeric = testing::central_difference(store->params()[i], loss, 1e-5);
      const double err = std::abs(grads[i] - numeric);
      EXPECT_TRUE(err <= 1e-6 || err <= 1e-3 * std::abs(numeric))
          << h.name << " " << p.spec.name << "[" << i - p.offset << "]: analytic " << grads[i]
          << " numeric " << numeric;
    }
  }
  EXPECT_EQ(gdn_tensors, 9);  // attn_qkv, attn_gate, ssm_{beta,alpha,conv1d,dt,a,norm,out}
}

TEST_P(HybridGradient, FloatPathMatchesDoubleGradients) {
  const HybridCase& h = GetParam();
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  auto dstore = make_store<double>(h);
  auto fstore = make_store<float>(h);
  for (int64_t i = 0; i < dstore->total(); ++i) dstore->params()[i] = double(fstore->params()[i]);
  const int64_t B = 2, T = 13;
  const auto tokens = ids(B * T, 0, false), targets = ids(B * T, 1, true);
  TrainModel<double> dmodel(*dstore, B, T);
  TrainModel<float> fmodel(*fstore, B, T);
  const CrossEntropyResult dr = dmodel.forward(tokens.data(), targets.data(), cx);
  const CrossEntropyResult fr = fmodel.forward(tokens.data(), targets.data(), cx);
  EXPECT_NEAR(fr.loss_sum, dr.loss_sum, 1e-5 * dr.loss_sum);
  dstore->zero_grads();
  fstore->zero_grads();
  dmodel.backward(1.0 / double(dr.counted), cx);
  fmodel.backward(1.0 / double(dr.counted), cx);
  for (const ParamTensor& p : dstore->tensors()) {
    double diff = 0.0, norm = 0.0;
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
      const double d = dstore->grads()[i], f = double(fstore->grads()[i]);
      diff += (d - f) * (d - f);
      norm += d * d;
    }
    EXPECT_LE(std::sqrt(diff), 1e-4 * std::sqrt(norm) + 1e-9) << h.name << " " << p.spec.name;
  }
}

// Training is a mode of the one forward: its logits are inference's (prefill through
// the KV cache and the recurrent state).
TEST_P(HybridGradient, TrainingLogitsEqualInference) {
  const HybridCase& h = GetParam();
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  auto store = make_store<float>(h);
  const int64_t T = 13;
  const auto tokens = ids(T, 2, false), targets = ids(T, 3, false);
  TrainModel<float> model(*store, 1, T);
  model.forward(tokens.data(), targets.data(), cx);
  Model m;
  m.config = store->config();
  m.weights = store->weights();
  const std::vector<float> want = testing::inference_logits(m, tokens, nullptr, cx);
  const float* got = model.logits();
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-4f * std::max(1.0f, std::abs(want[i]))) << h.name << " " << i;
}

INSTANTIATE_TEST_SUITE_P(TinyHybrids, HybridGradient, ::testing::ValuesIn(kHybrids),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HybridTraining, AdamWStepsLowerTheLoss) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  auto store = make_store<float>(kHybrids[0]);
  const int64_t B = 2, T = 12;
  const auto tokens = ids(B * T, 0, false), targets = ids(B * T, 1, false);
  TrainModel<float> model(*store, B, T);
  AdamWConfig adamw;
  std::vector<double> losses;
  for (int step = 1; step <= 20; ++step) {
    store->zero_grads();
    const CrossEntropyResult r = model.forward(tokens.data(), targets.data(), cx);
    losses.push_back(r.loss_sum / double(r.counted));
    model.backward(1.0 / double(r.counted), cx);
    adamw_step(*store, adamw, 1e-2, step);
  }
  EXPECT_LT(losses.back(), 0.5 * losses.front());
}

TEST(HybridTraining, PackedRowsAreRefused) {
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  auto store = make_store<float>(kHybrids[0]);
  const auto tokens = ids(6, 0, false);
  const std::vector<int32_t> positions = {0, 1, 2, 0, 1, 2}, segment = {0, 0, 0, 1, 1, 1};
  TrainModel<float> model(*store, 1, 6);
  EXPECT_THROW(model.forward(tokens.data(), tokens.data(), positions.data(), segment.data(), cx),
               Error);
}

}  // namespace
}  // namespace toy::train
