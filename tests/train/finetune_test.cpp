// Fine-tuning (train/finetune.h): LoRA gradients against central differences in
// double precision, the step-0 identity on quantized bases, the input gradient
// through a quantized frozen weight, the adapter written in llama.cpp's format
// read back by toy, full fine-tuning over a frozen embedding, and exact resume
// from a checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "grad_check.h"
#include "inference_logits.h"
#include "kernels/compute.h"
#include "kernels/cpu/features.h"
#include "kernels/lora.h"
#include "model/linear.h"
#include "model/lora.h"
#include "model/model.h"
#include "quant/quant.h"
#include "support/fixtures.h"
#include "train/checkpoint.h"
#include "train/finetune.h"
#include "train/model.h"
#include "train/params.h"
#include "train/scratch_config.h"
#include "train/trainer.h"

namespace toy::train {
namespace {

ScratchShape tiny_shape() {
  ScratchShape s;
  s.arch = "llama";
  s.n_vocab = 13;
  s.n_embd = 12;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 4;
  s.n_ff = 9;
  s.n_ctx = 5;
  return s;
}

const std::vector<int32_t> kTokens = {1, 5, 12, 0, 7, 3, 3, 9, 2, 11};
const std::vector<int32_t> kTargets = {5, 12, -1, 7, 4, 3, 9, 2, -1, 6};

TEST(ParseLoraTargets, AcceptsPeftAndGgufNames) {
  EXPECT_EQ(parse_lora_targets("q,v"), (std::vector<std::string>{"attn_q", "attn_v"}));
  EXPECT_EQ(parse_lora_targets("q_proj, o_proj,ffn_down,q"),
            (std::vector<std::string>{"attn_q", "attn_output", "ffn_down"}));
  EXPECT_EQ(parse_lora_targets("all-linear").size(), 7u);
  EXPECT_THROW(parse_lora_targets("q,w"), Error);
  EXPECT_THROW(parse_lora_targets(""), Error);
}

// Every adapter tensor of LoRA on all seven projections, with B moved away from zero so
// both A's and B's gradients are in general position.
TEST(LoraGradient, AdaptersMatchFiniteDifferencesInDouble) {
  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const ModelConfig config = scratch_config(tiny_shape());
  ParamStore<double> base(config, [](const TensorSpec& s) { return s.name == "output.weight"; });
  init_random(base, 7, 1.0);
  LoraConfig lora;
  lora.rank = 3;
  lora.alpha = 5.0;
  lora.targets = parse_lora_targets("all-linear");
  auto store = make_lora_store<double>(config, base.weights(), lora);
  ASSERT_EQ(store->tensors().size(), 2u * 7u * 2u);
  const std::vector<double> noise = testing::random_values(store->total(), 5, 0.3);
  for (int64_t i = 0; i < store->total(); ++i) store->params()[i] += noise[i];

  TrainModel<double> model(*store, 2, 5);
  auto loss = [&] {
    const CrossEntropyResult r = model.forward(kTokens.data(), kTargets.data(), cx);
    return r.loss_sum / double(r.counted);
  };
  const CrossEntropyResult r = model.forward(kTokens.data(), kTargets.data(), cx);
  store->zero_grads();
  model.backward(1.0 / double(r.counted), cx);
  const std::vector<double> grads(store->grads(), store->grads() + store->total());
  for (const ParamTensor& p : store->tensors()) {
    double norm = 0.0;
    for (int64_t s = 0; s < 5; ++s) {
      const int64_t i = p.offset + (s * 7919 + 3) % p.numel;
      const double numeric = testing::central_difference(store->params()[i], loss, 1e-5);
      const double err = std::abs(grads[i] - numeric);
      norm += std::abs(grads[i]);
      EXPECT_TRUE(err <= 1e-7 || err <= 1e-4 * std::abs(numeric))
          << p.spec.name << "[" << i - p.offset << "]: analytic " << grads[i] << " numeric "
          << numeric;
    }
    EXPECT_GT(norm, 0.0) << p.spec.name;
  }
  // The base is frozen: the forward read it, nothing was allocated for it.
  EXPECT_EQ(store->find("blk.0.attn_q.weight"), nullptr);
}

// LoRA dropout: the mask is a function of (stream, term, row, i), so the finite differences
// see the same masked function the backward differentiates; about p of the inputs drop.
TEST(LoraGradient, DropoutMatchesFiniteDifferencesInDouble) {
  std::vector<double> ones(1000, 1.0), dropped(1000);
  lora_dropout(dropped.data(), ones.data(), 10, 100, 0.3f, 5, 2, 40);
  const auto zeros = std::count(dropped.begin(), dropped.end(), 0.0);
  EXPECT_NEAR(double(zeros), 300.0, 60.0);
  for (double v : dropped) EXPECT_TRUE(v == 0.0 || std::abs(v - 1.0 / 0.7) < 1e-6);

  ThreadPool pool(1);
  const Compute cx{pool, cpu::host_backend()};
  const ModelConfig config = scratch_config(tiny_shape());
  ParamStore<double> base(config, [](const TensorSpec& s) { return s.name == "output.weight"; });
  init_random(base, 7, 1.0);
  LoraConfig lora;
  lora.rank = 2;
  lora.targets = parse_lora_targets("q,v,down");
  auto store = make_lora_store<double>(config, base.weights(), lora);
  const std::vector<double> noise = testing::random_values(store->total(), 5, 0.3);
  for (int64_t i = 0; i < store->total(); ++i) store->params()[i] += noise[i];
  TrainModel<double> model(*store, 2, 5);
  auto loss_with = [&](float p) {
    model.set_lora_dropout(p, 1234, 0);
    const CrossEntropyResult r = model.forward(kTokens.data(), kTargets.data(), cx);
    return r.loss_sum / double(r.counted);
  };
  EXPECT_NE(loss_with(0.5f), loss_with(0.0f));
  const double dropped_loss = loss_with(0.5f);
  store->zero_grads();
  model.backward(1.0 / 8.0, cx);
  const std::vector<double> grads(store->grads(), store->grads() + store->total());
  auto loss = [&] { return loss_with(0.5f); };
  EXPECT_EQ(loss(), dropped_loss);
  for (const ParamTensor& p : store->tensors())
    for (int64_t s = 0; s < 4; ++s) {
      const int64_t i = p.offset + (s * 7919 + 3) % p.numel;
      const double numeric = testing::central_difference(store->params()[i], loss, 1e-5);
      const double err = std::abs(grads[i] - numeric);
      EXPECT_TRUE(err <= 1e-7 || err <= 1e-4 * std::abs(numeric))
          << p.spec.name << "[" << i - p.offset << "]: analytic " << grads[i] << " numeric "
          << numeric;
    }
}

// The float training path (packed GEMM, quantized base) against the double gradients.
TEST(LoraGradient, FloatPathMatchesDouble) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const ModelConfig config = scratch_config(tiny_shape());
  ParamStore<double> dbase(config, [](const TensorSpec& s) { return s.name == "output.weight"; });
  ParamStore<float> fbase(config, [](const TensorSpec& s) { return s.name == "output.weight"; });
  init_random(dbase, 7, 1.0);
  init_random(fbase, 7, 1.0);
  LoraConfig lora;
  lora.rank = 2;
  lora.targets = parse_lora_targets("q,k,v,o,down");
  auto dstore = make_lora_store<double>(config, dbase.weights(), lora);
  auto fstore = make_lora_store<float>(config, fbase.weights(), lora);
  const std::vector<double> noise = testing::random_values(dstore->total(), 5, 0.3);
  for (int64_t i = 0; i < dstore->total(); ++i) {
    fstore->params()[i] += float(noise[i]);
    dstore->params()[i] = double(fstore->params()[i]);
  }
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
    EXPECT_LE(std::sqrt(diff), 1e-4 * std::sqrt(norm) + 1e-9) << p.spec.name;
  }
}

// dx through a frozen quantized weight (rows dequantized in blocks) equals dx through
// its dequantized F32 copy.
TEST(LinearBackward, InputGradientThroughQuantizedWeightMatchesDequantizedCopy) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const int64_t n_in = 64, n_out = 300, T = 7;  // n_out spans two blocks of rows
  for (DType type : {DType::Q4_0, DType::Q8_0, DType::F16, DType::Q4_K}) {
    const int64_t n = type == DType::Q4_K ? 256 : n_in;
    const std::vector<float> values = testing::to_float(testing::random_values(n * n_out, 3));
    Tensor w = Tensor::zeros(type, {n, n_out});
    for (int64_t r = 0; r < n_out; ++r)
      quant::quantize_row(type, values.data() + r * n, const_cast<uint8_t*>(w.row(r)), n);
    Tensor w32 = Tensor::zeros(DType::F32, {n, n_out});
    for (int64_t r = 0; r < n_out; ++r)
      quant::dequantize_row(type, w.row(r), w32.ptr<float>() + r * n, n);
    const std::vector<float> dy = testing::to_float(testing::random_values(T * n_out, 4));
    const std::vector<float> x = testing::to_float(testing::random_values(T * n, 6));
    std::vector<float> dx(static_cast<size_t>(T * n), 0.5f), dx32 = dx;
    const LinearContext ctx{cx, MatmulMode::Train};
    linear_backward(dx.data(), Tensor{}, Tensor{}, dy.data(), x.data(), w, T, ctx);
    linear_backward(dx32.data(), Tensor{}, Tensor{}, dy.data(), x.data(), w32, T, ctx);
    for (size_t i = 0; i < dx.size(); ++i)
      ASSERT_NEAR(dx[i], dx32[i], 1e-4 * (1.0 + std::abs(dx32[i]))) << dtype_name(type) << " " << i;
  }
}

// Step 0 of LoRA is the base bit for bit (B = 0), on a quantized and a float base; after
// the adapter is written and read back, toy applies it exactly as training did.
TEST(LoraAdapter, StepZeroIsTheBaseAndTheWrittenAdapterReadsBack) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  for (const char* name : {"models/llama-q4_0.gguf", "models/stories260K.gguf"}) {
    const Model model = Model::load(testing::fixture_path(name));
    LoraConfig lora;
    lora.rank = 4;
    lora.targets = parse_lora_targets("all-linear");
    auto store = make_lora_store<float>(model.config, model.weights, lora);
    const std::vector<int32_t> tokens = {1, 3, 7, 2, 9, 4};
    const auto base = testing::inference_logits(model, tokens, nullptr, cx);
    auto set = store->lora_over(store->grads());
    const auto step0 = testing::inference_logits(model, tokens, set.get(), cx);
    ASSERT_EQ(base.size(), step0.size());
    EXPECT_EQ(std::memcmp(base.data(), step0.data(), base.size() * sizeof(float)), 0) << name;

    // Give B values (a trained adapter), write it, read it back through llama.cpp's format.
    const std::vector<double> noise = testing::random_values(store->total(), 9, 0.05);
    for (const ParamTensor& p : store->tensors())
      if (p.spec.name.ends_with(".lora_b"))
        for (int64_t i = p.offset; i < p.offset + p.numel; ++i)
          store->params()[i] = float(noise[i]);
    const std::string path = testing::temp_path("adapter.gguf");
    write_lora_adapter(path, *store, model.config, lora.alpha, "test");
    const auto adapter = std::make_shared<const LoraAdapter>(LoraAdapter::load(path, model));
    EXPECT_EQ(adapter->alpha, float(lora.alpha));
    LoraSet loaded;
    loaded.add(adapter, 1.0f, model);
    const auto trained = testing::inference_logits(model, tokens, set.get(), cx);
    const auto reloaded = testing::inference_logits(model, tokens, &loaded, cx);
    double diff = 0.0;
    for (size_t i = 0; i < trained.size(); ++i)
      diff = std::max(diff, double(std::abs(trained[i] - reloaded[i])));
    EXPECT_LE(diff, 1e-5) << name;
    EXPECT_NE(std::memcmp(base.data(), trained.data(), base.size() * sizeof(float)), 0) << name;
    std::filesystem::remove(path);
  }
}

// Full fine-tuning over a quantized base: the trained tensors start as the dequantized
// base (the training forward gives the base's exact logits), the frozen token embedding
// stays in its mapping, and the written model keeps the base's tensor types.
TEST(FullFinetune, StartsAtTheBaseAndWritesTheBaseTypes) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const Model model = Model::load(testing::fixture_path("models/llama-q8_0.gguf"));
  auto store = make_full_store(model, /*train_embeddings=*/false);
  EXPECT_EQ(store->find("token_embd.weight"), nullptr);
  EXPECT_NE(store->find("blk.0.attn_q.weight"), nullptr);
  EXPECT_EQ(store->weights().token_embd.data, model.weights.token_embd.data);
  EXPECT_EQ(store->grad_weights().token_embd.data, nullptr);

  Model trained = model;  // the store's weights: F32 blocks over the base's embeddings
  trained.weights = store->weights();
  const std::vector<int32_t> tokens = {1, 3, 7, 2, 9, 4};
  const auto base = testing::inference_logits(model, tokens, nullptr, cx);
  const auto copy = testing::inference_logits(trained, tokens, nullptr, cx);
  for (size_t i = 0; i < base.size(); ++i)
    ASSERT_NEAR(copy[i], base[i], 1e-4 * (1 + std::abs(base[i])));

  const std::string path = testing::temp_path("full.gguf");
  write_finetuned_model(path, *store, model, std::nullopt, pool);
  const Model written = Model::load(path);
  for (const gguf::TensorInfo& info : model.file->tensors())
    EXPECT_EQ(written.file->find_tensor(info.name)->type, info.type) << info.name;
  const auto reread = testing::inference_logits(written, tokens, nullptr, cx);
  for (size_t i = 0; i < base.size(); ++i)
    ASSERT_NEAR(reread[i], base[i], 1e-3 * (1 + std::abs(base[i])));
  std::filesystem::remove(path);
}

// 20 steps in one run equal 10 steps, a checkpoint, a fresh process state restored from
// it, and 10 more: the same losses and the same weights, bit for bit.
TEST(Checkpoint, ResumeContinuesBitIdentically) {
  const Model model = Model::load(testing::fixture_path("models/stories260K.gguf"));
  std::vector<int32_t> tokens(3000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 37 + i / 11) % 500 + 3);
  const Dataset data(tokens, 0.1, 16, "synthetic");
  TrainOptions o;
  o.steps = 20;
  o.n_seq = 4;
  o.n_pos = 16;
  o.adamw.lr = 1e-2;
  o.schedule.lr = 1e-2;
  o.schedule.warmup = 3;
  o.schedule.total = 20;
  o.schedule.cosine = true;
  LoraConfig lora;
  lora.targets = parse_lora_targets("q,v,down");
  const RunDescription run = {{"mode", "lora"}};
  ThreadPool pool(2);

  auto store_a = make_lora_store<float>(model.config, model.weights, lora);
  Trainer a(*store_a, data, o, pool);
  std::vector<double> losses_a;
  a.run([&](const StepReport& r) { losses_a.push_back(r.loss); }, nullptr);

  const std::string dir = testing::temp_path("ckpt");
  std::vector<double> losses_b;
  {
    auto store = make_lora_store<float>(model.config, model.weights, lora);
    TrainOptions first = o;
    first.steps = 10;
    Trainer b(*store, data, first, pool);
    b.run([&](const StepReport& r) { losses_b.push_back(r.loss); }, nullptr);
    save_checkpoint(dir, *store, b.state(), run);
  }
  LoraConfig other_seed = lora;
  other_seed.seed = 99;  // the checkpoint, not the initialization, decides
  auto store_b = make_lora_store<float>(model.config, model.weights, other_seed);
  Trainer b(*store_b, data, o, pool);
  b.restore(load_checkpoint(dir, *store_b, run));
  EXPECT_EQ(b.steps_done(), 10);
  b.run([&](const StepReport& r) { losses_b.push_back(r.loss); }, nullptr);

  EXPECT_EQ(losses_a, losses_b);
  EXPECT_EQ(std::memcmp(store_a->params(), store_b->params(), store_a->total() * sizeof(float)), 0);
  EXPECT_LT(losses_a.back(), losses_a.front());
  EXPECT_THROW(load_checkpoint(dir, *store_b, {{"mode", "full"}}), Error);
  std::filesystem::remove_all(dir);
}

// With LoRA dropout the masks depend on the global row, not on the data-parallel split:
// one and two threads train alike (up to float summation order), and differently from p = 0.
TEST(Trainer, LoraDropoutDoesNotDependOnTheThreadCount) {
  const Model model = Model::load(testing::fixture_path("models/stories260K.gguf"));
  std::vector<int32_t> tokens(3000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 37 + i / 11) % 500 + 3);
  const Dataset data(tokens, 0.1, 16, "synthetic");
  auto run = [&](int threads, float p) {
    TrainOptions o;
    o.steps = 6;
    o.n_seq = 4;
    o.n_pos = 16;
    o.adamw.lr = 1e-2;
    o.schedule.lr = 1e-2;
    o.lora_dropout = p;
    LoraConfig lora;
    auto store = make_lora_store<float>(model.config, model.weights, lora);
    ThreadPool pool(threads);
    Trainer trainer(*store, data, o, pool);
    std::vector<double> losses;
    trainer.run([&](const StepReport& r) { losses.push_back(r.loss); }, nullptr);
    return losses;
  };
  const auto one = run(1, 0.2f), two = run(2, 0.2f), none = run(2, 0.0f);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(two[i], one[i], 1e-4 * one[i]) << i;
  EXPECT_NE(two.back(), none.back());
}

}  // namespace
}  // namespace toy::train
