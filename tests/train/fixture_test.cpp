// Against an independent implementation: ../shared/fixtures/train holds tiny
// llama / qwen2 / qwen3 GGUF models with a fixed batch, the loss, every weight's
// gradient and the losses of 3 AdamW steps, computed by PyTorch in float64.
// Each model is loaded through the normal GGUF path and trained in F32.
#include <gtest/gtest.h>

#include "kernels/compute.h"
#include "kernels/cpu/features.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "model/model.h"
#include "support/fixtures.h"
#include "train/model.h"
#include "train/params.h"

namespace toy::train {
namespace {

class TrainFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainFixture, LossGradientsAndAdamWStepsMatchPyTorch) {
  const std::string name = GetParam();
  const Model m = Model::load(testing::fixture_path("train/" + name + ".gguf"));
  const auto json = nlohmann::json::parse(
      testing::read_text(testing::fixture_path("train/" + name + ".train.json")));
  const auto grads_file =
      gguf::File::open(testing::fixture_path("train/" + json["grads_file"].get<std::string>()));

  ParamStore<float> store(
      m.config, [&](const TensorSpec& spec) { return m.file->find_tensor(spec.name) != nullptr; });
  load_params(store, m.config, m.weights);

  std::vector<int32_t> tokens, targets;
  for (const auto& row : json["tokens"])
    for (const auto& t : row) tokens.push_back(t.get<int32_t>());
  for (const auto& row : json["targets"])
    for (const auto& t : row) targets.push_back(t.get<int32_t>());
  const int64_t B = static_cast<int64_t>(json["tokens"].size());
  const int64_t T = static_cast<int64_t>(json["tokens"][0].size());

  ThreadPool pool(2);

  const Compute cx{pool, cpu::host_backend()};
  TrainModel<float> model(store, B, T);
  CrossEntropyResult r = model.forward(tokens.data(), targets.data(), cx);
  const double loss = r.loss_sum / double(r.counted);
  const double ref_loss = json["loss"].get<double>();
  EXPECT_LE(std::abs(loss - ref_loss), 1e-5 * ref_loss) << name << " loss " << loss;

  store.zero_grads();
  model.backward(1.0 / double(r.counted), cx);
  double worst = 0.0;
  std::string worst_name;
  for (const ParamTensor& p : store.tensors()) {
    const Tensor ref = grads_file->tensor(p.spec.name);
    ASSERT_EQ(ref.numel(), p.numel) << p.spec.name;
    const float* g_ref = ref.ptr<const float>();
    const float* g = store.grads() + p.offset;
    double diff = 0.0, norm = 0.0;
    for (int64_t i = 0; i < p.numel; ++i) {
      diff += (double(g[i]) - g_ref[i]) * (double(g[i]) - g_ref[i]);
      norm += double(g_ref[i]) * g_ref[i];
    }
    const double rel = std::sqrt(diff) / std::sqrt(norm);
    EXPECT_LE(rel, 1e-4) << name << " gradient of " << p.spec.name;
    if (rel > worst) worst = rel, worst_name = p.spec.name;
  }
  std::printf("[ %s ] loss %.9f (ref %.9f), worst gradient rel error %.2e (%s)\n", name.c_str(),
              loss, ref_loss, worst, worst_name.c_str());

  const auto& h = json["adamw"];
  AdamWConfig adamw;
  adamw.lr = h["lr"].get<double>();
  adamw.beta1 = h["beta1"].get<double>();
  adamw.beta2 = h["beta2"].get<double>();
  adamw.eps = h["eps"].get<double>();
  adamw.weight_decay = h["weight_decay"].get<double>();
  const auto& ref_losses = json["losses_before_each_step_and_after_last"];
  for (int step = 0; step <= 3; ++step) {
    store.zero_grads();
    r = model.forward(tokens.data(), targets.data(), cx);
    const double step_loss = r.loss_sum / double(r.counted);
    const double ref = ref_losses[static_cast<size_t>(step)].get<double>();
    EXPECT_LE(std::abs(step_loss - ref), 1e-4 * ref) << name << " loss before step " << step;
    std::printf("[ %s ] loss %d: %.9f (ref %.9f)\n", name.c_str(), step, step_loss, ref);
    if (step == 3) break;
    model.backward(1.0 / double(r.counted), cx);
    adamw_step(store, adamw, adamw.lr, step + 1);
  }
}

INSTANTIATE_TEST_SUITE_P(PyTorchFloat64, TrainFixture,
                         ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-qwen3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace toy::train
