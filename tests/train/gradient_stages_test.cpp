// The backward's stage hook (TrainModel::set_stage_hook), on which a data-parallel run
// starts summing gradients over the ranks while the backward goes on
// (train/backward_reduction.h): the stages of gradient_stages cover the store once, the
// hook reports the head and then every layer from the last down, and when it reports a
// stage that stage's gradients already have their final values (nothing the backward does
// later adds to them) — for dense, tied, Gemma 2, MoE, hybrid, LoRA and lens models.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "train/finetune.h"
#include "train/model.h"
#include "train/params.h"
#include "train/scratch_config.h"

namespace toy::train {
namespace {

struct StageCase {
  const char* name;
  ScratchShape shape;
  bool tied = false;
  bool lora = false;        // LoRA adapters (on every linear target) over the model
  int64_t n_embd_lens = 0;  // a projection lens from a table of this width
};

void PrintTo(const StageCase& c, std::ostream* os) {
  *os << c.name;
}

ScratchShape shape(const char* arch, const char* pattern = "") {
  ScratchShape s;
  s.arch = arch;
  s.n_vocab = 13;
  s.n_embd = 12;
  s.n_layer = 3;
  s.n_head = 2;
  s.n_head_kv = 1;
  s.head_dim = 6;
  s.n_ff = 9;
  s.n_ctx = 5;
  s.layer_pattern = pattern;
  return s;
}

ScratchShape moe(const char* arch) {
  ScratchShape s = shape(arch);
  s.n_expert = 4;
  s.n_expert_used = 2;
  s.n_ff_exp = 7;
  s.n_ff_shexp = 5;
  return s;
}

const StageCase kCases[] = {
    {"llama_untied", shape("llama")},
    {"qwen2_tied", shape("qwen2"), true},
    {"gemma2", shape("gemma2"), true},
    {"qwen3moe", moe("qwen3moe")},
    {"qwen2moe", moe("qwen2moe")},
    {"hybrid", shape("llama", "gdn,attn,gdn")},
    {"llama_lora", shape("llama"), false, true},
    {"llama_lens", shape("llama"), false, false, 8},
};

// tokens and targets (B=2, T=5) with one ignored position.
const std::vector<int32_t> kTokens = {1, 5, 12, 0, 7, 3, 3, 9, 2, 11};
const std::vector<int32_t> kTargets = {5, 12, -1, 7, 4, 3, 9, 2, 8, 6};

class GradientStages : public ::testing::TestWithParam<StageCase> {};

TEST_P(GradientStages, EachStageIsFinalWhenTheHookReportsIt) {
  const StageCase& c = GetParam();
  ModelConfig config = scratch_config(c.shape);
  config.n_embd_lens = c.n_embd_lens;
  auto base = std::make_unique<ParamStore<float>>(config, [&](const TensorSpec& spec) {
    if (spec.name == "output.weight") return !c.tied;
    return spec.name.find(".bias") != std::string::npos && config.arch().qkv_bias;
  });
  init_random(*base, 7, 1.0);
  std::unique_ptr<ParamStore<float>> lora;
  if (c.lora) {
    LoraConfig l;
    l.rank = 2;
    l.targets = parse_lora_targets("all-linear");
    lora = make_lora_store<float>(config, base->weights(), l);
    // B = 0 would leave A's gradient 0: move B away from it.
    for (int64_t i = 0; i < lora->total(); ++i) lora->params()[i] += 0.01f * float(i % 7 + 1);
  }
  ParamStore<float>& store = lora ? *lora : *base;

  // The stages partition [0, total) in ascending ranges.
  const std::vector<std::vector<ElementRange>> stages = gradient_stages(store);
  ASSERT_EQ(stages.size(), size_t(config.n_layer + 2));
  std::vector<int> covered(size_t(store.total()), 0);
  for (const auto& ranges : stages)
    for (const auto& [begin, end] : ranges) {
      ASSERT_LT(begin, end);
      for (int64_t i = begin; i < end; ++i) ++covered[size_t(i)];
    }
  for (int64_t i = 0; i < store.total(); ++i) ASSERT_EQ(covered[size_t(i)], 1) << "element " << i;
  // Every layer trains something; the head too, unless only adapters of the layers train.
  for (int64_t il = 0; il <= config.n_layer - (c.lora ? 1 : 0); ++il)
    EXPECT_FALSE(stages[size_t(il)].empty()) << c.name << " stage " << il;

  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  TrainModel<float> model(store, 2, 5);
  std::vector<int64_t> order;
  std::vector<std::vector<float>> at_hook(stages.size());
  model.set_stage_hook([&](int64_t stage) {
    order.push_back(stage);
    for (const auto& [begin, end] : stages[size_t(stage)])
      at_hook[size_t(stage)].insert(at_hook[size_t(stage)].end(), store.grads() + begin,
                                    store.grads() + end);
  });
  const CrossEntropyResult r = model.forward(kTokens.data(), kTargets.data(), cx);
  store.zero_grads();
  model.backward(1.0 / double(r.counted), cx);

  std::vector<int64_t> expected = {config.n_layer};
  for (int64_t il = config.n_layer - 1; il >= 0; --il) expected.push_back(il);
  EXPECT_EQ(order, expected);
  for (int64_t stage = 0; stage <= config.n_layer; ++stage) {
    std::vector<float> now;
    for (const auto& [begin, end] : stages[size_t(stage)])
      now.insert(now.end(), store.grads() + begin, store.grads() + end);
    ASSERT_EQ(now.size(), at_hook[size_t(stage)].size());
    EXPECT_EQ(std::memcmp(now.data(), at_hook[size_t(stage)].data(), now.size() * sizeof(float)), 0)
        << c.name << ": stage " << stage << " changed after the hook reported it";
    // Not vacuous: the stage has a gradient.
    bool nonzero = false;
    for (float g : now) nonzero = nonzero || g != 0.0f;
    EXPECT_TRUE(nonzero || now.empty()) << c.name << " stage " << stage;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GradientStages, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace toy::train
