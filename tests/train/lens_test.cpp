// The projection lens (toy train --donor-embeddings): a donor's frozen token table
// [d_donor, V] read through a trained lens.proj.weight [d_donor, n_embd]. Only the lens
// learns, and the model written with the lens folded into token_embd is a standard GGUF
// whose logits are the training-time forward's.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "gguf/reader.h"
#include "grad_check.h"
#include "inference_logits.h"
#include "kernels/cpu/features.h"
#include "model/model.h"
#include "quant/quant.h"
#include "support/fixtures.h"
#include "train/export.h"
#include "train/model.h"
#include "train/params.h"
#include "train/scratch_config.h"

namespace toy::train {
namespace {

constexpr int64_t kSeqs = 2, kPos = 6;

// A tiny llama of width 48 over a donor table of another width (any stored type: Q8_0 here).
struct LensModel {
  std::vector<uint8_t> donor_bytes;  // (V rows of d_donor) Q8_0
  Weights donor;                     // token_embd only
  std::unique_ptr<ParamStore<float>> store;
};

LensModel make_lens_model(int64_t d_donor) {
  ScratchShape shape;
  shape.n_vocab = 19;
  shape.n_embd = 48;
  shape.n_layer = 2;
  shape.n_head = 4;
  shape.n_head_kv = 2;
  shape.n_ff = 24;
  shape.n_ctx = kPos;
  ModelConfig config = scratch_config(shape);
  config.n_embd_lens = d_donor;
  LensModel m;
  const std::vector<double> values = testing::random_values(d_donor * config.n_vocab, 5, 0.05);
  const int64_t row = row_bytes(DType::Q8_0, d_donor);
  m.donor_bytes.resize(static_cast<size_t>(row * config.n_vocab));
  for (int64_t v = 0; v < config.n_vocab; ++v) {
    const std::vector<float> r(values.begin() + v * d_donor, values.begin() + (v + 1) * d_donor);
    quant::quantize_row(DType::Q8_0, r.data(), m.donor_bytes.data() + v * row, d_donor);
  }
  m.donor.layers.resize(static_cast<size_t>(config.n_layer));
  m.donor.token_embd = Tensor::view(DType::Q8_0, m.donor_bytes.data(), {d_donor, config.n_vocab});
  std::vector<TensorSpec> specs;
  for (TensorSpec& spec :
       model_specs(config, [](const TensorSpec& s) { return s.name == "output.weight"; }))
    if (spec.name != "token_embd.weight") specs.push_back(spec);
  m.store = std::make_unique<ParamStore<float>>(config, specs, &m.donor);
  init_random(*m.store, 11, 1.0);
  return m;
}

void make_batch(int64_t n_vocab, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
  for (int64_t i = 0; i < kSeqs * kPos; ++i) {
    tokens.push_back(static_cast<int32_t>((i * 7 + 3) % n_vocab));
    targets.push_back(static_cast<int32_t>((i * 5 + 1) % n_vocab));
  }
}

TEST(ProjectionLens, OnlyTheLensAndTheModelTrainNotTheDonorTable) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  LensModel m = make_lens_model(32);
  ParamStore<float>& store = *m.store;
  EXPECT_EQ(store.find("token_embd.weight"), nullptr);
  const ParamTensor* lens = store.find("lens.proj.weight");
  ASSERT_NE(lens, nullptr);
  EXPECT_EQ(lens->spec.ne[0], 32);
  EXPECT_EQ(lens->spec.ne[1], 48);
  const std::vector<uint8_t> donor_before = m.donor_bytes;

  TrainModel<float> model(store, kSeqs, kPos);
  std::vector<int32_t> tokens, targets;
  make_batch(store.config().n_vocab, tokens, targets);
  AdamWConfig adamw;
  double first = 0.0, last = 0.0;
  for (int step = 1; step <= 30; ++step) {
    store.zero_grads();
    const CrossEntropyResult r = model.forward(tokens.data(), targets.data(), cx);
    model.backward(1.0 / double(r.counted), cx);
    if (step == 1) {
      double lens_grad = 0.0;
      for (int64_t i = lens->offset; i < lens->offset + lens->numel; ++i)
        lens_grad += std::abs(store.grads()[i]);
      EXPECT_GT(lens_grad, 0.0);
      first = r.loss_sum / double(r.counted);
    }
    last = r.loss_sum / double(r.counted);
    adamw_step(store, adamw, 1e-2, step, &pool);
  }
  EXPECT_LT(last, 0.7 * first);
  EXPECT_EQ(m.donor_bytes, donor_before);
}

// The export folds token_embd[v] = proj · donor[v]: the written model (no lens, a
// [n_embd, V] token_embd) gives the training forward's logits, to 1e-5 of their scale.
TEST(ProjectionLens, FoldedExportGivesTheTrainingForwardsLogits) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  for (int64_t d_donor : {32, 96}) {
    LensModel m = make_lens_model(d_donor);
    const std::string path = testing::temp_path("lens.gguf");
    write_model_gguf(path, *m.store, "lens", DType::F32, [](gguf::Writer& w) {
      w.set("tokenizer.ggml.model", gguf::Value::string("none"));
    });
    const Model written = Model::load(path);
    EXPECT_EQ(written.config.n_embd_lens, 0);
    EXPECT_EQ(written.weights.token_embd.ne[0], 48);
    EXPECT_EQ(written.weights.token_embd.ne[1], 19);
    EXPECT_EQ(written.file->find_tensor("lens.proj.weight"), nullptr);

    TrainModel<float> train(*m.store, kSeqs, kPos);
    std::vector<int32_t> tokens, targets;
    make_batch(written.config.n_vocab, tokens, targets);
    train.forward(tokens.data(), targets.data(), cx);
    const int64_t V = written.config.n_vocab;
    for (int64_t s = 0; s < kSeqs; ++s) {
      const std::vector<int32_t> seq(tokens.begin() + s * kPos, tokens.begin() + (s + 1) * kPos);
      const std::vector<float> ref = testing::inference_logits(written, seq, nullptr, cx);
      double diff = 0.0, scale = 0.0;
      for (int64_t i = 0; i < kPos * V; ++i) {
        diff = std::max(diff, std::abs(double(train.logits()[s * kPos * V + i]) - ref[i]));
        scale = std::max(scale, std::abs(double(ref[i])));
      }
      EXPECT_LE(diff, 1e-5 * scale) << "d_donor " << d_donor << " sequence " << s;
    }
    std::filesystem::remove(path);
  }
}

}  // namespace
}  // namespace toy::train
